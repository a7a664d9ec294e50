//! 2×2 windows at stride 2 without padding (LeNet's pools and most CNNs'), sixteen outputs of a
//! row per AVX-512 step: each pair of input rows is loaded with masks (rows of 10–28 values
//! leave most of a 16-lane loop to its scalar tail otherwise) and split into even and odd
//! columns by one permute. Results equal the scalar loops in `cpu` bit for bit: the same
//! additions in the same order, the same first-maximum-wins and NaN rules.

/// Whether the CPU runs these kernels (AVX-512F); elsewhere `cpu` keeps its scalar loops.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Max pooling of one output row from input rows `r0` and `r1` (each at least `2·ys.len()`
/// long), writing the maxima to `ys` and their plane offsets (`top` is `r0`'s offset in the
/// plane, `w` the plane's width) to `argmax`. Callers check [`available`] first (it is asserted).
pub(super) fn max_row(
    r0: &[f32],
    r1: &[f32],
    top: u32,
    w: u32,
    ys: &mut [f32],
    argmax: &mut [u32],
) {
    check_rows(r0, r1, ys.len());
    assert!(
        argmax.len() >= ys.len(),
        "2×2 pooling row: argmax shorter than the row"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `check_rows` checked AVX-512F and the lengths.
    unsafe {
        avx512::max_row(r0, r1, top, w, ys, argmax)
    }
}

/// Average pooling of one output row from input rows `r0` and `r1` (each at least
/// `2·ys.len()` long). Callers check [`available`] first (it is asserted).
pub(super) fn avg_row(r0: &[f32], r1: &[f32], ys: &mut [f32]) {
    check_rows(r0, r1, ys.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `max_row`.
    unsafe {
        avx512::avg_row(r0, r1, ys)
    }
}

/// The preconditions of the AVX-512 rows, checked (a failure is a bug in the caller): the CPU
/// has AVX-512F and both input rows hold two values per output.
fn check_rows(r0: &[f32], r1: &[f32], n: usize) {
    assert!(available(), "2×2 pooling rows need AVX-512F");
    assert!(
        r0.len() >= 2 * n && r1.len() >= 2 * n,
        "2×2 pooling row: input rows shorter than two per output"
    );
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, __m512i, __mmask16, _CMP_GT_OQ, _CMP_UNORD_Q, _mm512_add_epi32, _mm512_add_ps,
        _mm512_cmp_ps_mask, _mm512_mask_blend_epi32, _mm512_mask_blend_ps,
        _mm512_mask_storeu_epi32, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_mul_ps,
        _mm512_permutex2var_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32,
    };

    /// Lane masks of a step of `n` (1..=16) outputs: the outputs, and the low and high 16 of
    /// its `2n` inputs.
    fn masks(n: usize) -> (__mmask16, __mmask16, __mmask16) {
        let bits = |k: usize| ((1u32 << k.min(16)) - 1) as __mmask16;
        (bits(n), bits(2 * n), bits((2 * n).saturating_sub(16)))
    }

    /// The even and odd columns of `2n` values of `row` from `at` (lanes past `n` zero).
    ///
    /// # Safety
    /// AVX-512F; `row` holds `at + 2n` values (the masks keep every load inside it).
    #[target_feature(enable = "avx512f")]
    unsafe fn split_columns(
        row: &[f32],
        at: usize,
        lo: __mmask16,
        hi: __mmask16,
    ) -> (__m512, __m512) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let p = row.as_ptr().wrapping_add(at);
        // SAFETY: masked-off lanes are neither read nor faulted on; enabled ones are in `row`.
        let (a, b) = unsafe {
            (
                _mm512_maskz_loadu_ps(lo, p),
                _mm512_maskz_loadu_ps(hi, p.wrapping_add(16)),
            )
        };
        (
            _mm512_permutex2var_ps(a, even, b),
            _mm512_permutex2var_ps(a, odd, b),
        )
    }

    /// The four candidates of the 2×2 windows of outputs `o0..o0 + 16` of a row: the even and
    /// odd columns of `r0`, then of `r1` (lanes past the row zero).
    ///
    /// # Safety
    /// AVX-512F; as in [`split_columns`] for both rows.
    #[target_feature(enable = "avx512f")]
    unsafe fn windows(
        r0: &[f32],
        r1: &[f32],
        o0: usize,
        lo: __mmask16,
        hi: __mmask16,
    ) -> [__m512; 4] {
        // SAFETY: forwarded from the caller.
        let ((p0, p1), (q0, q1)) = unsafe {
            (
                split_columns(r0, 2 * o0, lo, hi),
                split_columns(r1, 2 * o0, lo, hi),
            )
        };
        [p0, p1, q0, q1]
    }

    /// # Safety
    /// AVX-512F; the lengths checked by `super::max_row`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_row(
        r0: &[f32],
        r1: &[f32],
        top: u32,
        w: u32,
        ys: &mut [f32],
        argmax: &mut [u32],
    ) {
        let twice: __m512i =
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let n = ys.len();
        for o0 in (0..n).step_by(16) {
            let (out, lo, hi) = masks(n - o0);
            // SAFETY: as in `split_columns`; the stores are masked to the row's outputs.
            unsafe {
                let [p0, p1, q0, q1] = windows(r0, r1, o0, lo, hi);
                let c = _mm512_add_epi32(_mm512_set1_epi32((top + 2 * o0 as u32) as i32), twice);
                let (mut best, mut at) = (p0, c);
                for (v, dt) in [(p1, 1), (q0, w), (q1, w + 1)] {
                    // `v` wins when larger, or NaN over a non-NaN best (as `super::super::beats`).
                    let nan_v = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                    let nan_best = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(best, best);
                    let wins = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best) | (nan_v & !nan_best);
                    best = _mm512_mask_blend_ps(wins, best, v);
                    let t = _mm512_add_epi32(c, _mm512_set1_epi32(dt as i32));
                    at = _mm512_mask_blend_epi32(wins, at, t);
                }
                _mm512_mask_storeu_ps(ys.as_mut_ptr().add(o0), out, best);
                _mm512_mask_storeu_epi32(argmax.as_mut_ptr().add(o0).cast(), out, at);
            }
        }
    }

    /// # Safety
    /// AVX-512F; the lengths checked by `super::avg_row`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avg_row(r0: &[f32], r1: &[f32], ys: &mut [f32]) {
        let n = ys.len();
        for o0 in (0..n).step_by(16) {
            let (out, lo, hi) = masks(n - o0);
            // SAFETY: as in `max_row`.
            unsafe {
                let [p0, p1, q0, q1] = windows(r0, r1, o0, lo, hi);
                // ((a + b) + c) + d, then × 0.25: the scalar loop's order.
                let sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(p0, p1), q0), q1);
                let avg = _mm512_mul_ps(sum, _mm512_set1_ps(0.25));
                _mm512_mask_storeu_ps(ys.as_mut_ptr().add(o0), out, avg);
            }
        }
    }
}
