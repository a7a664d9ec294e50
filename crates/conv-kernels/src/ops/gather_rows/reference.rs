//! Reference gathers: one byte at a time.

use super::{GatherRowsHostKernels, byte_at};
use crate::reference::Reference;

impl GatherRowsHostKernels for Reference {
    fn gather_rows(
        &self,
        words: &[u32],
        row_len: usize,
        indices: &[u32],
        values: &[f32],
        out: &mut [f32],
    ) {
        for (r, &i) in indices.iter().enumerate() {
            for j in 0..row_len {
                let b = byte_at(words, i as usize * row_len + j);
                out[r * row_len + j] = values[b as usize];
            }
        }
    }
}
