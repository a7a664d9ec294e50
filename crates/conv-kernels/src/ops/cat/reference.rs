//! Reference row copies.

use super::CatHostKernels;
use crate::reference::Reference;

impl CatHostKernels for Reference {
    fn copy_rows(
        &self,
        rows: usize,
        len: usize,
        src: (&[f32], usize, usize),
        dst: (&mut [f32], usize, usize),
    ) {
        let (s, s_stride, s_off) = src;
        let (d, d_stride, d_off) = dst;
        for r in 0..rows {
            for j in 0..len {
                d[r * d_stride + d_off + j] = s[r * s_stride + s_off + j];
            }
        }
    }
}
