use super::{Optimizer, load_buffers};
use crate::error::Result;
use autograd::{Gradients, Param};
use conv_kernels::{Device, DeviceTensor, SgdConfig};
use std::collections::BTreeMap;

/// Stochastic gradient descent (`torch.optim.SGD`: lr, momentum, dampening 0, weight decay,
/// Nesterov); momentum buffers live on the device, zero-started.
pub struct Sgd {
    device: Device,
    cfg: SgdConfig,
    params: Vec<(String, Param)>,
    momentum: Vec<Option<DeviceTensor>>,
}

impl std::fmt::Debug for Sgd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sgd")
            .field("cfg", &self.cfg)
            .field("params", &self.params.len())
            .finish()
    }
}

impl Sgd {
    /// An optimizer for `params` (e.g. `model.named_parameters()`) on `device`.
    pub fn new(device: &Device, params: Vec<(String, Param)>, cfg: SgdConfig) -> Result<Self> {
        cfg.check()?;
        let momentum = params
            .iter()
            .map(|(_, p)| {
                (cfg.momentum > 0.0)
                    .then(|| device.zeros(&p.dims()))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            device: device.clone(),
            cfg,
            params,
            momentum,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
}

impl Optimizer for Sgd {
    fn kind(&self) -> &'static str {
        "sgd"
    }

    fn params(&self) -> &[(String, Param)] {
        &self.params
    }

    fn step(&mut self, grads: &Gradients) -> Result<()> {
        for ((_, p), buf) in self.params.iter().zip(&mut self.momentum) {
            let Some(g) = grads.param(p) else {
                continue;
            };
            p.update(|t| self.device.sgd_step(&self.cfg, t, g, buf.as_mut()))?;
        }
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.cfg.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }

    fn state_tensors(&self) -> Vec<(String, DeviceTensor)> {
        self.params
            .iter()
            .zip(&self.momentum)
            .filter_map(|((n, _), b)| {
                b.as_ref()
                    .map(|b| (format!("{n}.momentum_buffer"), b.clone()))
            })
            .collect()
    }

    fn load_state(
        &mut self,
        tensors: &BTreeMap<String, DeviceTensor>,
        _metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let buffers = self
            .params
            .iter()
            .zip(&mut self.momentum)
            .filter_map(|((n, _), b)| b.as_mut().map(|b| (format!("{n}.momentum_buffer"), b)));
        load_buffers("sgd", buffers, tensors)
    }
}
