//! Activations forward and backward, with a branch-free `exp` the compiler vectorises.

use super::ActivationHostKernels;
use crate::Activation;
use crate::cpu::CpuBackend;
use crate::cpu::ELEMENTWISE_CHUNK;
use rayon::prelude::*;

/// `e^x` for any finite or infinite `x`, within ~2 ulp on `[-87, 88]`; the argument is clamped
/// to that range (so `e^-1e4` is ~1e-38, not 0, and `e^1e4` is ~1.6e38, not infinity).
///
/// Cody–Waite range reduction `x = k·ln2 + r` and a degree-6 polynomial for `e^r` (Cephes
/// `expf` coefficients), then `2^k` built in the exponent bits: no branches, no table.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5·2^23 trick: `t` holds k in its low mantissa bits, which also
    // gives 2^k's exponent bits without a float→int conversion (both vectorise).
    const SHIFT: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let scale = f32::from_bits(t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23);
    e * scale
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // tanh x = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}): no cancellation for large |x|, and
    // for small |x| fall back to the odd series (the quotient loses relative precision there).
    let a = x.abs();
    let e = fast_exp(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let x2 = x * x;
    let small = a * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
    let t = if a < 0.0625 { small } else { big };
    t.copysign(x)
}

simd_dispatch!(fn apply_chunk(act: Activation, x: &[f32], y: &mut [f32]) => apply_chunk_generic);

#[inline(always)]
fn apply_chunk_generic(act: Activation, x: &[f32], y: &mut [f32]) {
    match act {
        Activation::Sigmoid => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = sigmoid(v);
            }
        }
        Activation::Relu => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v.max(0.0);
            }
        }
        Activation::Tanh => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = tanh(v);
            }
        }
    }
}

simd_dispatch!(fn apply_in_place_chunk(act: Activation, y: &mut [f32]) => apply_in_place_generic);

#[inline(always)]
fn apply_in_place_generic(act: Activation, y: &mut [f32]) {
    match act {
        Activation::Sigmoid => y.iter_mut().for_each(|v| *v = sigmoid(*v)),
        Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Tanh => y.iter_mut().for_each(|v| *v = tanh(*v)),
    }
}

/// The fused epilogue of conv2d and matmul on the calling thread: `y = act(y)` in place while
/// `y` is still in cache, bit for bit what the activation op computes; nothing when `act` is
/// `None`.
pub(crate) fn epilogue(act: Option<Activation>, y: &mut [f32]) {
    if let Some(act) = act {
        apply_in_place_chunk(act, y);
    }
}

/// [`epilogue`] over a whole output, in parallel chunks.
pub(crate) fn epilogue_parallel(act: Option<Activation>, y: &mut [f32]) {
    if let Some(act) = act {
        y.par_chunks_mut(ELEMENTWISE_CHUNK)
            .for_each(|c| apply_in_place_chunk(act, c));
    }
}

/// `y = act(x)`.
fn forward(act: Activation, x: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(x.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(yc, xc)| apply_chunk(act, xc, yc));
}

/// `grad_x = grad_y * act'(·)` with the derivative taken from the forward output `y`.
fn backward(act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
    grad_x
        .par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(y.par_chunks(ELEMENTWISE_CHUNK))
        .zip(grad_y.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|((gx, yc), gy)| backward_chunk(act, yc, gy, gx));
}

simd_dispatch!(
    /// [`backward`] over one chunk.
    fn backward_chunk(act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) => backward_chunk_generic
);

#[inline(always)]
fn backward_chunk_generic(act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
    match act {
        Activation::Sigmoid => {
            for ((o, &yv), &g) in grad_x.iter_mut().zip(y).zip(grad_y) {
                *o = g * (yv * (1.0 - yv));
            }
        }
        Activation::Relu => {
            for ((o, &yv), &g) in grad_x.iter_mut().zip(y).zip(grad_y) {
                *o = g * if yv > 0.0 { 1.0 } else { 0.0 };
            }
        }
        Activation::Tanh => {
            for ((o, &yv), &g) in grad_x.iter_mut().zip(y).zip(grad_y) {
                *o = g * (1.0 - yv * yv);
            }
        }
    }
}

impl ActivationHostKernels for CpuBackend {
    fn forward(&self, act: Activation, x: &[f32], y: &mut [f32]) {
        forward(act, x, y)
    }
    fn backward(&self, act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
        backward(act, y, grad_y, grad_x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = fast_exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(fast_exp(-1e4) >= 0.0 && fast_exp(-1e4) < 1e-37);
        assert!(fast_exp(1e4).is_finite());
    }

    #[test]
    fn tanh_and_sigmoid_are_accurate() {
        let mut x = -20.0f32;
        while x < 20.0 {
            assert!(
                (tanh(x) as f64 - (x as f64).tanh()).abs() < 3e-7,
                "tanh {x}"
            );
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid(x) as f64 - s).abs() < 3e-7, "sigmoid {x}");
            x += 0.0037;
        }
        assert_eq!(sigmoid(1e4), 1.0);
        assert!(sigmoid(-1e4) < 1e-37);
        assert_eq!(tanh(1e4), 1.0);
        assert_eq!(tanh(-1e4), -1.0);
    }
}
