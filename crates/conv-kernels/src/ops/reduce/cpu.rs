//! Fast sums: per fixed-size chunk (independent of the thread count) with several f32 lanes,
//! the chunks added in order in f64: deterministic and accurate.

use super::ReduceHostKernels;
use crate::cpu::reduce::{channel_plane_sums, lane_sum, sum_partials_in_order};
use crate::cpu::{CpuBackend, ELEMENTWISE_CHUNK};
use rayon::prelude::*;

/// Sum of all elements.
fn sum(x: &[f32]) -> f32 {
    let parts: Vec<f64> = x.par_chunks(ELEMENTWISE_CHUNK).map(lane_sum).collect();
    parts.iter().sum::<f64>() as f32
}

/// `out[ch] = Σ_b Σ_i x[b, ch, i]` for `x[n, c, hw]`.
fn channel_sum(n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let plane = c * hw;
    if plane == 0 || n == 0 {
        return;
    }
    if hw == 1 {
        // [n, c]: sum rows (linear bias gradient); per fixed chunk of rows, then in order.
        let rows = (ELEMENTWISE_CHUNK / c).max(1);
        let parts: Vec<Vec<f64>> = x
            .par_chunks(rows * c)
            .map(|xc| {
                let mut acc = vec![0f32; c];
                for row in xc.chunks(c) {
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                acc.into_iter().map(f64::from).collect()
            })
            .collect();
        sum_partials_in_order(out, &parts);
        return;
    }
    let sums = channel_plane_sums([n, c, hw], |_, start| [lane_sum(&x[start..][..hw])]);
    for (o, [s]) in out.iter_mut().zip(sums) {
        *o = s as f32;
    }
}

impl ReduceHostKernels for CpuBackend {
    fn sum(&self, x: &[f32]) -> f32 {
        sum(x)
    }
    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]) {
        channel_sum(n, c, hw, x, out)
    }
}
