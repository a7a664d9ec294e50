//! The element-wise activation functions and their scalar definitions.

/// Element-wise activation functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `1 / (1 + e^-x)`, computed without overflow for any finite x.
    Sigmoid,
    /// `max(x, 0)`; its gradient at 0 is 0, as in PyTorch.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
}

impl Activation {
    /// The op's name, for error messages.
    pub fn op_name(&self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    /// The activation of one value (the definition every backend follows).
    pub fn apply(&self, x: f32) -> f32 {
        match self {
            Activation::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
        }
    }

    /// The derivative expressed through the activation's *output* `y` (what backward stores).
    #[inline]
    pub fn derivative_from_output(&self, y: f32) -> f32 {
        match self {
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - y * y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(Activation::Sigmoid.apply(1e4), 1.0);
        assert_eq!(Activation::Sigmoid.apply(-1e4), 0.0);
        assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-7);
    }
}
