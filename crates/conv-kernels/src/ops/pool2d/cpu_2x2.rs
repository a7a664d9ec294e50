//! 2×2 windows at stride 2 without padding (LeNet's pools and most CNNs'), sixteen outputs of a
//! row per step, written once over [`F32x16`]: each pair of input rows is loaded with lane masks
//! (rows of 10–28 values leave most of a 16-lane loop to its scalar tail otherwise) and split
//! into even and odd columns. Max pooling runs in AVX-512 or AVX2; average pooling in AVX-512
//! only, as AVX2 CPUs run the compiler's vectorised loop faster (`cargo bench --bench kernels --
//! pool`, an AMD EPYC: 2×2 max forward 1.23 → 0.47 ms at LeNet's pool1 with these rows, the
//! average 0.14 → 0.20 ms). Results equal the scalar loops in `cpu` bit for bit: the same
//! additions in the same order, the same first-maximum-wins and NaN rules.

#[cfg(target_arch = "x86_64")]
use crate::cpu::f32x16::{F32x16, YmmPair, Zmm};
use crate::cpu::f32x16::{Isa, LANES};
#[cfg(target_arch = "x86_64")]
use crate::cpu::short_runs::copy_run;

/// Whether the max rows run on this CPU (AVX-512 or AVX2; elsewhere `cpu` keeps its loop).
pub(super) fn max_available() -> bool {
    Isa::detected().is_some()
}

/// Whether the average rows run on this CPU (AVX-512; elsewhere `cpu` keeps its loop).
pub(super) fn avg_available() -> bool {
    Isa::detected().is_some_and(Isa::is_avx512)
}

/// Max pooling of one output row from input rows `r0` and `r1` (each at least `2·ys.len()`
/// long), writing the maxima to `ys` and their plane offsets (`top` is `r0`'s offset in the
/// plane, `w` the plane's width) to `argmax`. Callers check [`max_available`] first (it is
/// asserted).
pub(super) fn max_row(
    r0: &[f32],
    r1: &[f32],
    [top, w]: [u32; 2],
    ys: &mut [f32],
    argmax: &mut [u32],
) {
    check_rows(r0, r1, ys.len());
    assert!(
        argmax.len() >= ys.len(),
        "2×2 pooling row: argmax shorter than the row"
    );
    let isa = Isa::detected().expect("2×2 max rows need AVX-512F or AVX2");
    // SAFETY: `isa` is this CPU's extension and the lengths are checked above.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512::max_row(r0, r1, [top, w], ys, argmax),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2::max_row(r0, r1, [top, w], ys, argmax),
        }
    }
}

/// Average pooling of one output row from input rows `r0` and `r1` (each at least
/// `2·ys.len()` long). Callers check [`avg_available`] first (it is asserted).
pub(super) fn avg_row(r0: &[f32], r1: &[f32], ys: &mut [f32]) {
    check_rows(r0, r1, ys.len());
    assert!(avg_available(), "2×2 average rows need AVX-512F");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is checked above, the lengths in `check_rows`.
    unsafe {
        avx512::avg_row(r0, r1, ys)
    }
}

/// The rows' precondition, checked (a failure is a bug in the caller): both input rows hold two
/// values per output.
fn check_rows(r0: &[f32], r1: &[f32], n: usize) {
    assert!(
        r0.len() >= 2 * n && r1.len() >= 2 * n,
        "2×2 pooling row: input rows shorter than two per output"
    );
}

/// Generates one extension's entry points, each compiled with its `#[target_feature]`s: the
/// max row, and the items given after it.
macro_rules! isa_rows {
    ($(#[$doc:meta])* mod $isa:ident: $vector:ident, $features:literal; $($extra:item)*) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        mod $isa {
            /// # Safety
            /// The CPU has this extension; the lengths checked by `super::max_row`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn max_row(
                r0: &[f32],
                r1: &[f32],
                at: [u32; 2],
                ys: &mut [f32],
                argmax: &mut [u32],
            ) {
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::max_row_in::<super::$vector>(r0, r1, at, ys, argmax) }
            }

            $($extra)*
        }
    };
}

isa_rows! {
    /// The rows in AVX-512: one register per 16 lanes, masks as mask registers.
    mod avx512: Zmm, "avx512f";

    /// # Safety
    /// The CPU has AVX-512F; the lengths checked by `super::avg_row`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avg_row(r0: &[f32], r1: &[f32], ys: &mut [f32]) {
        // SAFETY: this function has the extension; the rest is the caller's contract.
        unsafe { super::avg_row_in::<super::Zmm>(r0, r1, ys) }
    }
}

isa_rows! {
    /// The max rows in AVX2: two registers per 16 lanes, masked loads and blends.
    mod avx2: YmmPair, "avx2,fma";
}

/// The four candidates of the 2×2 windows of outputs `o0..o0 + 16` of a row (`n` of them from
/// `o0` on): the even and odd columns of `r0`, then of `r1` (lanes past the row zero).
///
/// # Safety
/// The CPU has `V`'s extension; `r0` and `r1` hold `2·(o0 + min(n, 16))` values (the masked
/// loads read no further).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn windows<V: F32x16>(r0: &[f32], r1: &[f32], o0: usize, n: usize) -> [V; 4] {
    // SAFETY: masked-off lanes are neither read nor faulted on; enabled ones are in the rows.
    unsafe {
        let (lo, hi) = (
            V::first_lanes(2 * n),
            V::first_lanes((2 * n).saturating_sub(LANES)),
        );
        // No closure: it would not inherit the caller's target features.
        let (a, b) = (r0.as_ptr().add(2 * o0), r1.as_ptr().add(2 * o0));
        let (p0, p1) = V::load_first(a, lo).even_odd(V::load_first(a.add(LANES), hi));
        let (q0, q1) = V::load_first(b, lo).even_odd(V::load_first(b.add(LANES), hi));
        [p0, p1, q0, q1]
    }
}

/// The 2×2 maxima of one row and their plane offsets.
///
/// # Safety
/// The CPU has `V`'s extension; the lengths checked by [`max_row`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn max_row_in<V: F32x16>(
    r0: &[f32],
    r1: &[f32],
    [top, w]: [u32; 2],
    ys: &mut [f32],
    argmax: &mut [u32],
) {
    /// Each lane's offset from its window's top-left corner along the row: `2·lane`.
    const TWICE: [u32; LANES] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
    let n = ys.len();
    // SAFETY: as in `windows`; the stores write the row's outputs only.
    unsafe {
        let twice = V::load(TWICE.as_ptr().cast());
        for o0 in (0..n).step_by(LANES) {
            let [p0, p1, q0, q1] = windows::<V>(r0, r1, o0, n - o0);
            let c = twice.add_bits(top + 2 * o0 as u32);
            let (mut best, mut at) = (p0, c);
            for (v, dt) in [(p1, 1), (q0, w), (q1, w + 1)] {
                (best, at) = best.keep_first_max(at, v, c.add_bits(dt));
            }
            let o1 = n.min(o0 + LANES);
            store_lanes(best, &mut ys[o0..o1]);
            store_lanes(at, &mut argmax[o0..o1]);
        }
    }
}

/// The 2×2 averages of one row.
///
/// # Safety
/// The CPU has `V`'s extension; the lengths checked by [`avg_row`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avg_row_in<V: F32x16>(r0: &[f32], r1: &[f32], ys: &mut [f32]) {
    let n = ys.len();
    // SAFETY: as in `max_row`.
    unsafe {
        let quarter = V::splat(0.25);
        for o0 in (0..n).step_by(LANES) {
            let [p0, p1, q0, q1] = windows::<V>(r0, r1, o0, n - o0);
            // ((a + b) + c) + d, then × 0.25: the scalar loop's order.
            let avg = p0.add(p1).add(q0).add(q1).mul(quarter);
            store_lanes(avg, &mut ys[o0..n.min(o0 + LANES)]);
        }
    }
}

/// Stores the first `dst.len()` (at most 16) lanes of `v` in `dst`, whose elements are f32 or
/// u32 (the lanes' bits): one full store, or a row's last few through a buffer. AVX2's masked
/// stores were the hottest instructions of these rows under `perf` on an AMD EPYC (max pooling
/// 8.6 % of a modern LeNet step with them, 7.8 % with this, 12.2 % with the scalar loop).
///
/// # Safety
/// The CPU has `V`'s extension.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store_lanes<V: F32x16, T: Copy + Default>(v: V, dst: &mut [T]) {
    const { assert!(size_of::<T>() == size_of::<f32>()) };
    // SAFETY: the caller has the extension; a full store writes the 16 elements of `dst`, the
    // buffer's 16 four-byte elements otherwise.
    unsafe {
        if dst.len() >= LANES {
            v.store(dst.as_mut_ptr().cast());
        } else {
            let mut buf = [T::default(); LANES];
            v.store(buf.as_mut_ptr().cast());
            copy_run(dst, &buf[..dst.len()]);
        }
    }
}
