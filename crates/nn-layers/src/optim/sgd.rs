use super::{Optimizer, check_distinct, load_buffers};
use crate::error::Result;
use autograd::{Gradients, Param};
use conv_kernels::{Device, DeviceTensor, SgdConfig, SgdTensors};
use std::collections::BTreeMap;

/// Stochastic gradient descent (`torch.optim.SGD`: lr, momentum, dampening 0, weight decay,
/// Nesterov); momentum buffers live on the device, zero-started.
///
/// Weight decay applies to every parameter, or, built with [`Sgd::new_with`], to all but those
/// a predicate names (PyTorch's two parameter groups, one with `weight_decay=0`; the usual
/// choice is batch norm's weights and biases, see [`super::batch_norm_parameters`]).
pub struct Sgd {
    device: Device,
    cfg: SgdConfig,
    params: Vec<(String, Param)>,
    momentum: Vec<Option<DeviceTensor>>,
    /// Per parameter: whether weight decay applies.
    decays: Vec<bool>,
}

impl std::fmt::Debug for Sgd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sgd")
            .field("cfg", &self.cfg)
            .field("params", &self.params.len())
            .field("no_decay", &self.decays.iter().filter(|d| !**d).count())
            .finish()
    }
}

impl Sgd {
    /// An optimizer for `params` (e.g. `model.named_parameters()`) on `device`.
    pub fn new(device: &Device, params: Vec<(String, Param)>, cfg: SgdConfig) -> Result<Self> {
        Self::new_with(device, params, cfg, |_| false)
    }

    /// An optimizer for `params` on `device` that does not decay the parameters whose full
    /// name `no_decay` accepts (they get `weight_decay` 0; everything else is as in
    /// [`Sgd::new`]).
    ///
    /// ```
    /// use conv_kernels::{Device, SgdConfig};
    /// use nn_layers::{Module, Sgd, optim::batch_norm_parameters, resnet};
    /// use tensor::SeededRng;
    ///
    /// let dev = Device::cpu();
    /// let net = resnet::resnet_small(&dev, &mut SeededRng::new(0))?;
    /// let bn = batch_norm_parameters(&net);
    /// assert!(bn.contains(&"0.1.weight".to_string()) && bn.contains(&"1.0.bn2.bias".to_string()));
    /// let cfg = SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 5e-4, nesterov: true };
    /// let sgd = Sgd::new_with(&dev, net.named_parameters(), cfg, |name| bn.iter().any(|b| b == name))?;
    /// assert!(!sgd.decays("1.0.bn1.weight") && sgd.decays("1.0.conv1.weight"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_with(
        device: &Device,
        params: Vec<(String, Param)>,
        cfg: SgdConfig,
        no_decay: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        cfg.check()?;
        check_distinct("Sgd", &params)?;
        let decays = params.iter().map(|(n, _)| !no_decay(n)).collect();
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
            decays,
        })
    }

    /// Whether weight decay applies to the parameter named `name` (false for a name it does not
    /// update).
    pub fn decays(&self, name: &str) -> bool {
        self.params
            .iter()
            .zip(&self.decays)
            .any(|((n, _), d)| n == name && *d)
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
        let no_decay = SgdConfig {
            weight_decay: 0.0,
            ..self.cfg
        };
        // One multi-tensor step per weight-decay group: a few GPU launches for the whole model.
        for (cfg, group_decays) in [(&self.cfg, true), (&no_decay, false)] {
            let mut guards = Vec::new();
            let mut momenta = Vec::new();
            for (((_, p), buf), decays) in
                self.params.iter().zip(&mut self.momentum).zip(&self.decays)
            {
                if *decays != group_decays {
                    continue;
                }
                if let Some(g) = grads.param(p) {
                    guards.push((p.borrow_mut(), g));
                    momenta.push(buf.as_mut());
                }
            }
            let mut steps: Vec<SgdTensors<'_>> = guards
                .iter_mut()
                .zip(momenta)
                .map(|((param, grad), momentum)| SgdTensors {
                    param,
                    grad,
                    momentum,
                })
                .collect();
            if !steps.is_empty() {
                self.device.sgd_steps(cfg, &mut steps)?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::batch_norm_parameters;
    use crate::{BatchNorm2d, Conv2d, Flatten, Linear, Module, ReLU, Sequential, loss};
    use conv_kernels::Conv2dSpec;
    use tensor::{SeededRng, Tensor};

    fn model(dev: &Device) -> Sequential {
        let rng = &mut SeededRng::new(3);
        Sequential::new()
            .with(Conv2d::new(dev, rng, 1, 2, 3, Conv2dSpec::new(1, 1)).unwrap())
            .with(BatchNorm2d::new(dev, 2).unwrap())
            .with(ReLU)
            .with(Flatten)
            .with(Linear::new(dev, rng, 2 * 4 * 4, 3).unwrap())
    }

    fn grads_of(dev: &Device, net: &Sequential) -> Gradients {
        let x = Tensor::rand_uniform(&[4, 1, 4, 4], 0.0, 1.0, &mut SeededRng::new(9)).unwrap();
        let tape = autograd::Tape::new(dev);
        let logits = net
            .forward(&tape.constant(dev.upload(&x).unwrap()))
            .unwrap();
        let labels = dev.upload_indices(&[0, 1, 2, 1]).unwrap();
        loss::cross_entropy(&logits, &labels)
            .unwrap()
            .loss
            .backward()
            .unwrap()
    }

    fn values(dev: &Device, net: &Sequential) -> Vec<(String, Vec<f32>)> {
        net.named_parameters()
            .into_iter()
            .map(|(n, p)| (n, dev.to_host(&p.value()).unwrap().into_vec()))
            .collect()
    }

    #[test]
    fn excluded_parameters_step_as_without_weight_decay() {
        let dev = Device::cpu();
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.5,
            nesterov: true,
        };
        let bn = batch_norm_parameters(&model(&dev));
        assert_eq!(bn, ["1.weight", "1.bias"]);

        // Two steps with batch norm excluded by name...
        let net = model(&dev);
        let mut opt = Sgd::new_with(&dev, net.named_parameters(), cfg, |n| {
            bn.iter().any(|b| b == n)
        })
        .unwrap();
        assert!(!opt.decays("1.weight") && opt.decays("0.weight") && !opt.decays("nope"));
        for _ in 0..2 {
            opt.step(&grads_of(&dev, &net)).unwrap();
        }
        // ... equal two steps of two optimizers, one without weight decay for batch norm
        // (PyTorch's two parameter groups).
        let reference = model(&dev);
        let (norm, rest): (Vec<_>, Vec<_>) = reference
            .named_parameters()
            .into_iter()
            .partition(|(n, _)| bn.contains(n));
        let plain = SgdConfig {
            weight_decay: 0.0,
            ..cfg
        };
        let mut a = Sgd::new(&dev, rest, cfg).unwrap();
        let mut b = Sgd::new(&dev, norm, plain).unwrap();
        for _ in 0..2 {
            let g = grads_of(&dev, &reference);
            a.step(&g).unwrap();
            b.step(&g).unwrap();
        }
        assert_eq!(values(&dev, &net), values(&dev, &reference));

        // And it matters: decaying everything moves the batch-norm weights elsewhere.
        let decayed = model(&dev);
        let mut all = Sgd::new(&dev, decayed.named_parameters(), cfg).unwrap();
        for _ in 0..2 {
            all.step(&grads_of(&dev, &decayed)).unwrap();
        }
        let (v1, v2) = (values(&dev, &net), values(&dev, &decayed));
        assert_ne!(v1[2], v2[2], "1.weight");
        assert_eq!(v1[2].0, "1.weight");
        // The momentum state keeps its names either way.
        assert_eq!(
            opt.state_tensors()
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            all.state_tensors()
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
        );
    }
}
