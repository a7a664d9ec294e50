//! Optimizers that update [`Param`]s in place on their device, keeping their state there too.

mod adam;
mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use crate::error::Result;
use autograd::{Gradients, Param};
use conv_kernels::DeviceTensor;
use std::collections::BTreeMap;

/// The full names of the parameters that belong to a `BatchNorm2d` of `model` (its `weight` and
/// `bias`, `layer1.0.bn1.weight`, `0.1.bias`, ...), found by module kind rather than by name, for
/// [`Sgd::new_with`]'s no-weight-decay set.
pub fn batch_norm_parameters(model: &dyn crate::Module) -> Vec<String> {
    let mut prefixes = Vec::new();
    model.for_each_module(&mut |name, m| {
        if m.kind() == "BatchNorm2d" {
            prefixes.push(format!("{name}."));
        }
    });
    model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())))
        .collect()
}

/// A first-order optimizer over a fixed list of named parameters. `Send`, so that a training
/// step can run on another worker thread (see `lenet-app`'s worker choice).
pub trait Optimizer: Send {
    /// `sgd` or `adam` (saved in checkpoints).
    fn kind(&self) -> &'static str;

    /// The parameters it updates, by name.
    fn params(&self) -> &[(String, Param)];

    /// One update of every parameter that has a gradient in `grads` (others are skipped,
    /// as PyTorch skips parameters whose `.grad` is `None`).
    fn step(&mut self, grads: &Gradients) -> Result<()>;

    /// The learning rate.
    fn lr(&self) -> f32;

    /// Changes the learning rate (schedules).
    fn set_lr(&mut self, lr: f32);

    /// The state tensors, by name (`<param>.momentum_buffer`, `<param>.exp_avg`, ...), still on
    /// the device; checkpoints store them under an `optim.` prefix.
    fn state_tensors(&self) -> Vec<(String, DeviceTensor)>;

    /// Scalar state (Adam's step count), as strings.
    fn state_metadata(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// Restores state saved from [`Optimizer::state_tensors`] and
    /// [`Optimizer::state_metadata`]; every name must be present with its shape.
    fn load_state(
        &mut self,
        tensors: &BTreeMap<String, DeviceTensor>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()>;
}

/// Replaces each `(name, buffer)` from `tensors`, checking presence and shape.
/// Refuses a parameter list naming one parameter twice (under two names, or twice under one):
/// a step updates all of them together, so a repeated one would be stepped twice and its lock
/// taken twice. `named_parameters()` lists each parameter once.
pub(crate) fn check_distinct(optimizer: &'static str, params: &[(String, Param)]) -> Result<()> {
    for (i, (name, p)) in params.iter().enumerate() {
        if let Some((other, _)) = params[..i].iter().find(|(_, q)| q.ptr_eq(p)) {
            return Err(crate::error::invalid(
                optimizer,
                format!("parameter {name} is the same tensor as {other}: list each parameter once"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn load_buffers<'a>(
    what: &'static str,
    buffers: impl Iterator<Item = (String, &'a mut DeviceTensor)>,
    tensors: &BTreeMap<String, DeviceTensor>,
) -> Result<()> {
    let mut mismatches = crate::error::Mismatches::default();
    let mut updates = Vec::new();
    for (name, buf) in buffers {
        match tensors.get(&name) {
            None => mismatches.missing.push(name),
            Some(t) if t.shape() != buf.shape() => {
                mismatches
                    .misshaped
                    .push((name, buf.dims().to_vec(), t.dims().to_vec()))
            }
            Some(t) => updates.push((buf, t.clone())),
        }
    }
    if !mismatches.is_empty() {
        return Err(crate::error::NnError::StateMismatch {
            source_name: format!("{what} state"),
            mismatches: Box::new(mismatches),
        });
    }
    for (buf, t) in updates {
        *buf = t;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use conv_kernels::{AdamConfig, Device, SgdConfig};

    #[test]
    fn optimizers_refuse_a_parameter_listed_twice() {
        let dev = Device::cpu();
        let p = Param::new(dev.zeros(&[3]).unwrap());
        let q = Param::new(dev.zeros(&[3]).unwrap());
        let twice = vec![
            ("a".to_string(), p.clone()),
            ("b".to_string(), q),
            ("c".to_string(), p),
        ];
        let e = Sgd::new(&dev, twice.clone(), SgdConfig::plain(0.1)).unwrap_err();
        assert!(e.to_string().contains("c is the same tensor as a"), "{e}");
        let e = Adam::new(&dev, twice, AdamConfig::default()).unwrap_err();
        assert!(e.to_string().contains("c is the same tensor as a"), "{e}");
    }
}
