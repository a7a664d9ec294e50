//! SGD settings and their validation.

use crate::error::{Result, spec_err};

/// Stochastic gradient descent settings (PyTorch `torch.optim.SGD`, dampening 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 disables the buffer).
    pub momentum: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn plain(lr: f32) -> Self {
        Self {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// Rejects non-finite or negative settings.
    pub fn check(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        if !ok(self.lr) || !ok(self.momentum) || !ok(self.weight_decay) {
            return Err(spec_err(
                "sgd_step",
                format!("settings must be finite and >= 0: {self:?}"),
            ));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(spec_err("sgd_step", "nesterov needs a positive momentum"));
        }
        Ok(())
    }
}
