use super::{Optimizer, check_distinct, load_buffers};
use crate::error::{NnError, Result};
use autograd::{Gradients, Param};
use conv_kernels::{AdamConfig, AdamTensors, Device, DeviceTensor};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Adam (`torch.optim.Adam`: lr, betas, eps, L2 weight decay, bias correction); both moments
/// live on the device, zero-started.
pub struct Adam {
    device: Device,
    cfg: AdamConfig,
    params: Vec<(String, Param)>,
    moments: Vec<(DeviceTensor, DeviceTensor)>,
    step: u32,
}

impl std::fmt::Debug for Adam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adam")
            .field("cfg", &self.cfg)
            .field("params", &self.params.len())
            .field("step", &self.step)
            .finish()
    }
}

impl Adam {
    /// An optimizer for `params` (e.g. `model.named_parameters()`) on `device`.
    pub fn new(device: &Device, params: Vec<(String, Param)>, cfg: AdamConfig) -> Result<Self> {
        cfg.check()?;
        check_distinct("Adam", &params)?;
        let moments = params
            .iter()
            .map(|(_, p)| Ok((device.zeros(&p.dims())?, device.zeros(&p.dims())?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            device: device.clone(),
            cfg,
            params,
            moments,
            step: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.step
    }
}

impl Optimizer for Adam {
    fn kind(&self) -> &'static str {
        "adam"
    }

    fn params(&self) -> &[(String, Param)] {
        &self.params
    }

    fn step(&mut self, grads: &Gradients) -> Result<()> {
        self.step += 1;
        // One multi-tensor step over every parameter (Adam has no weight-decay groups): a few
        // GPU launches for the whole model.
        let mut guards = Vec::new();
        let mut moments = Vec::new();
        for ((_, p), (m, v)) in self.params.iter().zip(&mut self.moments) {
            if let Some(g) = grads.param(p) {
                guards.push((p.borrow_mut(), g));
                moments.push((m, v));
            }
        }
        let mut steps: Vec<AdamTensors<'_>> = guards
            .iter_mut()
            .zip(moments)
            .map(|((param, grad), (m, v))| AdamTensors { param, grad, m, v })
            .collect();
        if !steps.is_empty() {
            self.device.adam_steps(&self.cfg, self.step, &mut steps)?;
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
            .zip(&self.moments)
            .flat_map(|((n, _), (m, v))| {
                [
                    (format!("{n}.exp_avg"), m.clone()),
                    (format!("{n}.exp_avg_sq"), v.clone()),
                ]
            })
            .collect()
    }

    fn state_metadata(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("step".to_string(), self.step.to_string())])
    }

    fn load_state(
        &mut self,
        tensors: &BTreeMap<String, DeviceTensor>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let raw = metadata.get("step").map_or("<missing>", String::as_str);
        let step = raw.parse::<u32>().map_err(|e| NnError::BadMetadata {
            path: PathBuf::from("<adam state>"),
            key: "step".into(),
            value: raw.into(),
            reason: e.to_string(),
        })?;
        let buffers = self
            .params
            .iter()
            .zip(&mut self.moments)
            .flat_map(|((n, _), (m, v))| {
                [(format!("{n}.exp_avg"), m), (format!("{n}.exp_avg_sq"), v)]
            });
        load_buffers("adam", buffers, tensors)?;
        self.step = step;
        Ok(())
    }
}
