//! Adam settings and their validation.

use crate::error::{Result, spec_err};

/// Adam settings (PyTorch `torch.optim.Adam`, L2 weight decay, bias correction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Rejects non-finite, negative or out-of-range settings.
    pub fn check(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        let beta = |b: f32| (0.0..1.0).contains(&b);
        if !ok(self.lr)
            || !ok(self.eps)
            || !ok(self.weight_decay)
            || !beta(self.beta1)
            || !beta(self.beta2)
        {
            return Err(spec_err("adam_step", format!("invalid settings: {self:?}")));
        }
        Ok(())
    }
}
