//! Row copies on the CPU: one `copy_from_slice` per row, rows split across threads when large.

use super::CatHostKernels;
use crate::cpu::{CpuBackend, ELEMENTWISE_CHUNK};
use rayon::prelude::*;

impl CatHostKernels for CpuBackend {
    fn copy_rows(
        &self,
        rows: usize,
        len: usize,
        src: (&[f32], usize, usize),
        dst: (&mut [f32], usize, usize),
    ) {
        let (s, s_stride, s_off) = src;
        let (d, d_stride, d_off) = dst;
        if rows == 0 || len == 0 {
            return;
        }
        let copy = |r: usize, row: &mut [f32]| {
            row[d_off..d_off + len].copy_from_slice(&s[r * s_stride + s_off..][..len]);
        };
        let d = &mut d[..rows * d_stride];
        if rows * len < ELEMENTWISE_CHUNK {
            d.chunks_mut(d_stride)
                .enumerate()
                .for_each(|(r, row)| copy(r, row));
        } else {
            d.par_chunks_mut(d_stride)
                .enumerate()
                .for_each(|(r, row)| copy(r, row));
        }
    }
}
