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

/// `y = act(x)` over one chunk: the sigmoid in AVX-512 intrinsics where the CPU has them, the
/// rest compiled for its widest vector extension.
fn apply_chunk(act: Activation, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if act == Activation::Sigmoid && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was detected at run time.
        return unsafe { avx512::sigmoid_into(x, y) };
    }
    apply_chunk_vectorised(act, x, y)
}

simd_dispatch!(fn apply_chunk_vectorised(act: Activation, x: &[f32], y: &mut [f32]) => apply_chunk_generic);

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

/// `y = act(y)` over one chunk, as [`apply_chunk`] computes it.
fn apply_in_place_chunk(act: Activation, y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if act == Activation::Sigmoid && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was detected at run time.
        return unsafe { avx512::sigmoid_in_place(y) };
    }
    apply_in_place_vectorised(act, y)
}

simd_dispatch!(fn apply_in_place_vectorised(act: Activation, y: &mut [f32]) => apply_in_place_generic);

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

/// `$body` with `$d` the derivative of `$act` (from its output) as a closure: one loop per
/// activation, each vectorised, the formulas those of [`Activation::derivative_from_output`].
macro_rules! by_derivative {
    ($act:expr, |$d:ident| $body:expr) => {
        match $act {
            Activation::Sigmoid => {
                let $d = |y: f32| Activation::Sigmoid.derivative_from_output(y);
                $body
            }
            Activation::Relu => {
                let $d = |y: f32| Activation::Relu.derivative_from_output(y);
                $body
            }
            Activation::Tanh => {
                let $d = |y: f32| Activation::Tanh.derivative_from_output(y);
                $body
            }
        }
    };
}

#[inline(always)]
fn backward_chunk_generic(act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
    by_derivative!(act, |d| {
        for ((o, &yv), &g) in grad_x.iter_mut().zip(y).zip(grad_y) {
            *o = g * d(yv);
        }
    })
}

simd_dispatch!(
    /// `g = g * act'(·)` over one chunk, the derivative taken from the forward output `y`.
    pub(crate) fn backward_in_place_chunk(act: Activation, y: &[f32], g: &mut [f32]) => backward_in_place_generic
);

#[inline(always)]
fn backward_in_place_generic(act: Activation, y: &[f32], g: &mut [f32]) {
    by_derivative!(act, |d| {
        for (o, &yv) in g.iter_mut().zip(y) {
            *o *= d(yv);
        }
    })
}

/// The sigmoid in AVX-512 intrinsics: [`fast_exp`]'s reduction and polynomial with fused
/// multiply-adds, `2^k` by `vscalefps`, and `1 / (1 + e)` from a 14-bit reciprocal refined by
/// one Newton step instead of a division (the division bounded the loop: 5 % of a seed step).
/// Within 3e-7 of the exact sigmoid, as the scalar one; its last bits may differ from it, so
/// results are reproducible per CPU kind, not across kinds.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_loadu_ps,
        _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps,
        _mm512_rcp14_ps, _mm512_roundscale_ps, _mm512_scalef_ps, _mm512_set1_ps, _mm512_storeu_ps,
        _mm512_sub_ps,
    };

    /// `1 / (1 + e^-v)` per lane; NaN stays NaN.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sigmoid(v: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        // min/max return their second operand when either is NaN: the argument's NaN passes.
        let a = _mm512_max_ps(c(-87.0), _mm512_min_ps(c(88.0), _mm512_sub_ps(c(0.0), v)));
        // Round to nearest, exceptions suppressed.
        let k = _mm512_roundscale_ps::<0x08>(_mm512_mul_ps(a, c(std::f32::consts::LOG2_E)));
        let r = _mm512_fnmadd_ps(k, c(0.693_359_4), a);
        let r = _mm512_fmadd_ps(k, c(2.121_944_4e-4), r);
        let mut p = c(1.987_569_1e-4);
        for coef in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm512_fmadd_ps(p, r, c(coef));
        }
        let e = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, c(1.0)));
        let d = _mm512_add_ps(c(1.0), _mm512_scalef_ps(e, k));
        let q = _mm512_rcp14_ps(d);
        _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, c(2.0)))
    }

    /// `dst[i] = sigmoid(src[i])` for `i < n`, 16 at a time, the tail masked.
    ///
    /// # Safety
    /// AVX-512F; `src` readable and `dst` writable for `n` floats (they may be the same).
    #[target_feature(enable = "avx512f")]
    unsafe fn sigmoid_map(src: *const f32, dst: *mut f32, n: usize) {
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: floats `i..i + 16 <= n` of both, by the caller's contract.
            unsafe { _mm512_storeu_ps(dst.add(i), sigmoid(_mm512_loadu_ps(src.add(i)))) };
            i += 16;
        }
        if i < n {
            let m = ((1u32 << (n - i)) - 1) as u16;
            // SAFETY: the mask covers floats `i..n` only.
            unsafe {
                let v = _mm512_maskz_loadu_ps(m, src.add(i));
                _mm512_mask_storeu_ps(dst.add(i), m, sigmoid(v));
            }
        }
    }

    /// `y = sigmoid(y)` in place.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sigmoid_in_place(y: &mut [f32]) {
        // SAFETY: `y` is readable and writable for its length.
        unsafe { sigmoid_map(y.as_ptr(), y.as_mut_ptr(), y.len()) }
    }

    /// `y = sigmoid(x)` over the shorter of the two.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sigmoid_into(x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        // SAFETY: both hold at least `n` floats.
        unsafe { sigmoid_map(x.as_ptr(), y.as_mut_ptr(), n) }
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
        // The chunk kernels (AVX-512 intrinsics where the CPU has them), tails included.
        let xs: Vec<f32> = (0..10_811).map(|i| -20.0 + i as f32 * 0.0037).collect();
        let mut ys = vec![0.0; xs.len()];
        apply_chunk(Activation::Sigmoid, &xs, &mut ys);
        let mut in_place = xs.clone();
        apply_in_place_chunk(Activation::Sigmoid, &mut in_place);
        for ((&x, &y), &z) in xs.iter().zip(&ys).zip(&in_place) {
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((y as f64 - s).abs() < 3e-7, "sigmoid chunk {x}");
            assert_eq!(y.to_bits(), z.to_bits(), "in place and not differ at {x}");
        }
        let mut edges = [1e4, -1e4, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0];
        apply_in_place_chunk(Activation::Sigmoid, &mut edges);
        assert_eq!(edges[0], 1.0);
        assert!(edges[1] >= 0.0 && edges[1] < 1e-37);
        assert!(edges[2].is_nan());
        assert_eq!((edges[3], edges[5]), (1.0, 0.5));
        assert!(edges[4] >= 0.0 && edges[4] < 1e-37);
        assert_eq!(tanh(1e4), 1.0);
        assert_eq!(tanh(-1e4), -1.0);
    }
}
