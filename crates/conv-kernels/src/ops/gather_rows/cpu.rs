//! Gathers on the CPU: rows split across threads when the batch is large.

use super::{GatherRowsHostKernels, byte_at};
use crate::cpu::{CpuBackend, ELEMENTWISE_CHUNK};
use rayon::prelude::*;

impl GatherRowsHostKernels for CpuBackend {
    fn gather_rows(
        &self,
        words: &[u32],
        row_len: usize,
        indices: &[u32],
        values: &[f32],
        out: &mut [f32],
    ) {
        if row_len == 0 || indices.is_empty() {
            return;
        }
        let row = |(i, dst): (&u32, &mut [f32])| {
            let start = *i as usize * row_len;
            for (j, d) in dst.iter_mut().enumerate() {
                *d = values[byte_at(words, start + j) as usize];
            }
        };
        let rows = indices.iter().zip(out.chunks_mut(row_len));
        if indices.len() * row_len < ELEMENTWISE_CHUNK {
            rows.for_each(row);
        } else {
            indices
                .par_iter()
                .zip(out.par_chunks_mut(row_len))
                .for_each(row);
        }
    }
}
