//! Fast element-wise updates: parallel over fixed chunks.

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
        .for_each(|(o, (a, b))| {
            for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                *o = a + b;
            }
        });
}

/// `y += alpha * x`.
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(x.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                *o += alpha * v;
            }
        });
}

/// `x *= alpha`.
fn scale(alpha: f32, x: &mut [f32]) {
    x.par_chunks_mut(ELEMENTWISE_CHUNK).for_each(|x| {
        for v in x {
            *v *= alpha;
        }
    });
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
