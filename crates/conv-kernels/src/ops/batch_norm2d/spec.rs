//! Batch-norm settings, validation, and the resolved geometry.

use crate::Activation;
use crate::error::{Result, shape_err, spec_err};
use crate::window::expect_rank;
use tensor::Shape;

const OP: &str = "batch_norm2d";

/// 2-D batch normalisation over `[n, c, h, w]` (PyTorch `F.batch_norm` with per-channel
/// `weight` and `bias`; defaults `eps = 1e-5`, `momentum = 0.1`), optionally followed by an
/// activation fused into its output (`F.relu(bn(x))` without the intermediate tensor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm2dSpec {
    /// Added to the variance before the square root.
    pub eps: f32,
    /// Weight of the new batch statistic in the running averages:
    /// `running = (1 - momentum) * running + momentum * batch`.
    pub momentum: f32,
    /// Training normalises with the batch's statistics and updates the running ones; eval
    /// normalises with the running statistics and leaves them alone.
    pub training: bool,
    /// An activation applied as the output is stored (and whose derivative the backward pass
    /// takes from that output first); `None` is plain batch norm.
    pub activation: Option<Activation>,
}

impl Default for BatchNorm2dSpec {
    fn default() -> Self {
        Self {
            eps: 1e-5,
            momentum: 0.1,
            training: true,
            activation: None,
        }
    }
}

/// Every size the kernels need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm2dGeometry {
    /// The settings.
    pub spec: BatchNorm2dSpec,
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Elements per channel plane (`h * w`).
    pub hw: usize,
}

impl BatchNorm2dGeometry {
    /// Values each channel's statistics are taken over (`n * h * w`).
    pub fn per_channel(&self) -> usize {
        self.n * self.hw
    }
}

impl BatchNorm2dSpec {
    /// Validates the input `[n, c, h, w]` and the per-channel `[c]` tensors (weight, bias,
    /// running mean and variance, in that order); training needs more than one value per
    /// channel, as in PyTorch.
    pub fn check(&self, x: &Shape, per_channel: &[(&str, &Shape)]) -> Result<BatchNorm2dGeometry> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(spec_err(
                OP,
                format!("eps must be positive, found {}", self.eps),
            ));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(spec_err(
                OP,
                format!("momentum must be in [0, 1], found {}", self.momentum),
            ));
        }
        expect_rank(OP, "input", x, 4)?;
        let d = x.dims();
        for (what, s) in per_channel {
            if s.dims() != [d[1]] {
                return Err(shape_err(OP, *what, format!("[{}]", d[1]), s));
            }
        }
        let g = BatchNorm2dGeometry {
            spec: *self,
            n: d[0],
            c: d[1],
            hw: d[2] * d[3],
        };
        if self.training && g.per_channel() <= 1 {
            return Err(spec_err(
                OP,
                format!("expected more than 1 value per channel when training, got input {x}"),
            ));
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_needs_two_values_per_channel() {
        let s = |d: &[usize]| Shape::new(d).unwrap();
        let spec = BatchNorm2dSpec::default();
        let c = s(&[3]);
        let pc = [("weight", &c)];
        assert!(spec.check(&s(&[1, 3, 1, 1]), &pc).is_err());
        assert!(spec.check(&s(&[2, 3, 1, 1]), &pc).is_ok());
        let eval = BatchNorm2dSpec {
            training: false,
            ..spec
        };
        assert!(eval.check(&s(&[1, 3, 1, 1]), &pc).is_ok());
        assert!(spec.check(&s(&[2, 4, 1, 1]), &pc).is_err());
    }
}
