//! Tolerance-checked comparisons and random test tensors.

use conv_kernels::Device;
use tensor::{SeededRng, Tensor};

/// Errors from a test body (kernel, tensor or comparison errors), with their message.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// `|got - want| <= atol + rtol * |want|` element-wise, with a message naming `what` and `dev`.
pub fn check_close(
    dev: &Device,
    what: &str,
    got: &Tensor,
    want: &Tensor,
    rtol: f32,
    atol: f32,
) -> TestResult {
    got.allclose(want, rtol, atol)
        .map_err(|m| format!("{} on {}: {m} (rtol {rtol}, atol {atol})", what, dev.name()).into())
}

/// Largest absolute value of a tensor (for tolerances scaled to the data).
pub fn max_abs(t: &Tensor) -> f32 {
    t.data().iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// A tensor of standard normal values.
pub fn randn(dims: &[usize], rng: &mut SeededRng) -> Tensor {
    Tensor::randn(dims, rng).expect("valid test shape")
}

/// A tensor of values uniform in `[low, high)`.
pub fn uniform(dims: &[usize], low: f32, high: f32, rng: &mut SeededRng) -> Tensor {
    Tensor::rand_uniform(dims, low, high, rng).expect("valid test shape")
}
