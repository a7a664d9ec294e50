//! Fast element-wise updates: parallel over fixed chunks, each chunk's loop compiled for the
//! widest vector extension the CPU has (`simd_dispatch`).

use super::ElementwiseHostKernels;
use crate::cpu::{CpuBackend, ELEMENTWISE_CHUNK};
use rayon::prelude::*;

/// `out = a + b`.
fn add_into(a: &[f32], b: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(
            a.par_chunks(ELEMENTWISE_CHUNK)
                .zip(b.par_chunks(ELEMENTWISE_CHUNK)),
        )
        .for_each(|(o, (a, b))| add_chunk(a, b, o));
}

simd_dispatch!(
    /// `o = a + b` over one chunk.
    fn add_chunk(a: &[f32], b: &[f32], o: &mut [f32]) => add_chunk_generic
);

#[inline(always)]
fn add_chunk_generic(a: &[f32], b: &[f32], o: &mut [f32]) {
    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
        *o = a + b;
    }
}

/// `y += alpha * x`.
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(x.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(y, x)| axpy_chunk(alpha, x, y));
}

simd_dispatch!(
    /// `y += alpha · x` over one chunk (`y += x` when `alpha` is 1: the same values, as
    /// `1 · x = x`, without the multiply).
    fn axpy_chunk(alpha: f32, x: &[f32], y: &mut [f32]) => axpy_chunk_generic
);

#[inline(always)]
fn axpy_chunk_generic(alpha: f32, x: &[f32], y: &mut [f32]) {
    if alpha == 1.0 {
        for (o, &v) in y.iter_mut().zip(x) {
            *o += v;
        }
    } else {
        for (o, &v) in y.iter_mut().zip(x) {
            *o += alpha * v;
        }
    }
}

/// `x *= alpha`.
fn scale(alpha: f32, x: &mut [f32]) {
    x.par_chunks_mut(ELEMENTWISE_CHUNK)
        .for_each(|x| scale_chunk(alpha, x));
}

simd_dispatch!(
    /// `x *= alpha` over one chunk.
    fn scale_chunk(alpha: f32, x: &mut [f32]) => scale_chunk_generic
);

#[inline(always)]
fn scale_chunk_generic(alpha: f32, x: &mut [f32]) {
    for v in x {
        *v *= alpha;
    }
}

impl ElementwiseHostKernels for CpuBackend {
    fn add_into(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        add_into(a, b, out)
    }

    fn axpy(&self, alpha: f32, x: &[f32], y: &mut [f32]) {
        axpy(alpha, x, y)
    }
    fn scale_in_place(&self, alpha: f32, x: &mut [f32]) {
        scale(alpha, x)
    }
}
