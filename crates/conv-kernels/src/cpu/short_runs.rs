//! Copies, adds and zeroing of short runs of f32 (rows of 7–32 values) in fixed-width steps:
//! the conv kernels move millions of such runs per training step, where a `memcpy` or
//! `memset` call costs more than the bytes it moves.

/// Copies `src` into `dst` (equal lengths) with fixed-width moves instead of a `memcpy` call:
/// im2col and the implicit GEMM's padded planes copy millions of runs of 10–28 floats per training step, and the call overhead of
/// `memcpy` on runs that short cost more than the bytes (measured: a fifth of a LeNet step).
/// Any element type: the pooling rows copy their argmax offsets (u32) with it too.
#[inline(always)]
pub(crate) fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len();
    let src = &src[..n];
    if n >= 16 {
        let mut i = 0;
        while i + 16 <= n {
            dst[i..i + 16].copy_from_slice(&src[i..i + 16]);
            i += 16;
        }
        if i < n {
            // The last 16 elements, overlapping what was already copied (same values).
            dst[n - 16..].copy_from_slice(&src[n - 16..]);
        }
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// `dst += src` (equal lengths) in fixed-width steps (see [`copy_run`]).
#[inline(always)]
pub(crate) fn add_run(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let src = &src[..n];
    let mut i = 0;
    while i + 16 <= n {
        for (d, s) in dst[i..i + 16].iter_mut().zip(&src[i..i + 16]) {
            *d += *s;
        }
        i += 16;
    }
    if i + 8 <= n {
        for (d, s) in dst[i..i + 8].iter_mut().zip(&src[i..i + 8]) {
            *d += *s;
        }
        i += 8;
    }
    if i + 4 <= n {
        for (d, s) in dst[i..i + 4].iter_mut().zip(&src[i..i + 4]) {
            *d += *s;
        }
        i += 4;
    }
    for (d, s) in dst[i..].iter_mut().zip(&src[i..]) {
        *d += *s;
    }
}

/// Zeroes `dst` with fixed-width stores (see [`copy_run`] for why not `memset`).
#[inline(always)]
pub(crate) fn zero_run(dst: &mut [f32]) {
    let n = dst.len();
    if n >= 16 {
        let mut i = 0;
        while i + 16 <= n {
            dst[i..i + 16].fill(0.0);
            i += 16;
        }
        if i < n {
            dst[n - 16..].fill(0.0);
        }
    } else if n >= 8 {
        dst[..8].fill(0.0);
        dst[n - 8..].fill(0.0);
    } else if n >= 4 {
        dst[..4].fill(0.0);
        dst[n - 4..].fill(0.0);
    } else {
        for d in dst {
            *d = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{add_run, copy_run, zero_run};

    #[test]
    fn short_runs_copy_and_zero_exactly() {
        for n in 0..70 {
            let src: Vec<f32> = (0..n + 3).map(|i| i as f32 + 1.0).collect();
            let mut dst = vec![-1.0f32; n + 2];
            copy_run(&mut dst[1..n + 1], &src[2..n + 2]);
            assert_eq!(dst[0], -1.0);
            assert_eq!(dst[n + 1], -1.0);
            assert_eq!(&dst[1..n + 1], &src[2..n + 2], "copy of {n}");
            add_run(&mut dst[1..n + 1], &src[2..n + 2]);
            let doubled: Vec<f32> = src[2..n + 2].iter().map(|v| 2.0 * v).collect();
            assert_eq!(&dst[1..n + 1], &doubled[..], "add of {n}");
            zero_run(&mut dst[1..n + 1]);
            assert!(dst[1..n + 1].iter().all(|&v| v == 0.0), "zero of {n}");
            assert_eq!((dst[0], dst[n + 1]), (-1.0, -1.0));
        }
    }
}
