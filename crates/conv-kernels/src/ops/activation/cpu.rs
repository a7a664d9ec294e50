//! Activations forward and backward, with a branch-free `exp` the compiler vectorises.

use super::ActivationHostKernels;
use crate::Activation;
use crate::cpu::CpuBackend;
use crate::cpu::ELEMENTWISE_CHUNK;
#[cfg(target_arch = "x86_64")]
use crate::cpu::f32x16::Isa;
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

/// `y = act(x)` over one chunk: the sigmoid in intrinsics where the CPU has AVX-512 or AVX2 +
/// FMA, the rest compiled for its widest vector extension.
fn apply_chunk(act: Activation, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if act == Activation::Sigmoid
        && let Some(isa) = Isa::detected()
    {
        // SAFETY: `Isa::detected` found the extension.
        return unsafe { sigmoid_vectors::sigmoid_into(isa, x, y) };
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
    if act == Activation::Sigmoid
        && let Some(isa) = Isa::detected()
    {
        // SAFETY: `Isa::detected` found the extension.
        return unsafe { sigmoid_vectors::sigmoid_in_place(isa, y) };
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
/// The sigmoid in intrinsics, written once over [`F32x16`] and compiled for AVX-512 and
/// AVX2 + FMA: a Cody–Waite `e^-v` (the coefficients of [`fast_exp`]) in fused multiply-adds,
/// then the reciprocal of `1 + e^-v`.
///
/// [`F32x16`]: crate::cpu::f32x16::F32x16
#[cfg(target_arch = "x86_64")]
mod sigmoid_vectors {
    use crate::cpu::f32x16::{F32x16, Isa, LANES, YmmPair, Zmm};

    /// `1 / (1 + e^-v)` per lane; NaN stays NaN.
    ///
    /// # Safety
    /// The CPU has `V`'s extension (this is inlined into a function compiled with it).
    #[inline(always)]
    unsafe fn sigmoid<V: F32x16>(v: V) -> V {
        // SAFETY: the extension by the caller.
        unsafe {
            let c = |x: f32| V::splat(x);
            // min/max return their second operand when either is NaN: the argument's NaN passes.
            let a = c(-87.0).max(c(88.0).min(c(0.0).sub(v)));
            let k = a.mul(c(std::f32::consts::LOG2_E)).round();
            let r = k.neg_mul_add(c(0.693_359_4), a);
            let r = k.mul_add(c(2.121_944_4e-4), r);
            let mut p = c(1.987_569_1e-4);
            for coef in [
                1.398_199_9e-3,
                8.333_452e-3,
                4.166_579_6e-2,
                1.666_666_5e-1,
                0.5,
            ] {
                p = p.mul_add(r, c(coef));
            }
            let e = p.mul_add(r.mul(r), r.add(c(1.0)));
            c(1.0).add(e.scale_pow2(k)).recip()
        }
    }

    /// `dst[i] = sigmoid(src[i])` for `i < n`, 16 at a time, the tail masked.
    ///
    /// # Safety
    /// The CPU has `V`'s extension (this is inlined into a function compiled with it); `src`
    /// readable and `dst` writable for `n` floats (they may be the same).
    #[inline(always)]
    unsafe fn sigmoid_map<V: F32x16>(src: *const f32, dst: *mut f32, n: usize) {
        let mut i = 0;
        while i + LANES <= n {
            // SAFETY: floats `i..i + 16 <= n` of both, by the caller's contract.
            unsafe { sigmoid(V::load(src.add(i))).store(dst.add(i)) };
            i += LANES;
        }
        if i < n {
            // SAFETY: the lanes cover floats `i..n` only.
            unsafe {
                let lanes = V::first_lanes(n - i);
                sigmoid(V::load_first(src.add(i), lanes)).store_first(dst.add(i), lanes);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn map_avx512(src: *const f32, dst: *mut f32, n: usize) {
        // SAFETY: this function has the extension; the rest is the caller's contract.
        unsafe { sigmoid_map::<Zmm>(src, dst, n) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn map_avx2(src: *const f32, dst: *mut f32, n: usize) {
        // SAFETY: this function has the extension; the rest is the caller's contract.
        unsafe { sigmoid_map::<YmmPair>(src, dst, n) }
    }

    /// `dst[i] = sigmoid(src[i])` for `i < n` in `isa`.
    ///
    /// # Safety
    /// The CPU has `isa`; `src` readable and `dst` writable for `n` floats.
    unsafe fn map(isa: Isa, src: *const f32, dst: *mut f32, n: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match isa {
                Isa::Avx512 => map_avx512(src, dst, n),
                Isa::Avx2 => map_avx2(src, dst, n),
            }
        }
    }

    /// `y = sigmoid(y)` in place.
    ///
    /// # Safety
    /// The CPU has `isa`.
    pub(super) unsafe fn sigmoid_in_place(isa: Isa, y: &mut [f32]) {
        // SAFETY: `y` is readable and writable for its length.
        unsafe { map(isa, y.as_ptr(), y.as_mut_ptr(), y.len()) }
    }

    /// `y = sigmoid(x)` over the shorter of the two.
    ///
    /// # Safety
    /// The CPU has `isa`.
    pub(super) unsafe fn sigmoid_into(isa: Isa, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        // SAFETY: both hold at least `n` floats.
        unsafe { map(isa, x.as_ptr(), y.as_mut_ptr(), n) }
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
        // The chunk kernels (intrinsics where the CPU has AVX-512 or AVX2), tails included.
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
