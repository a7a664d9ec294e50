//! Reduction machinery shared by the CPU kernels: lane sums and in-order partial sums.
//!
//! Sums are taken per fixed-size chunk (independent of the thread count) with several f32
//! lanes, and the chunks are added in order in f64: deterministic and accurate.

use super::ELEMENTWISE_CHUNK;
use rayon::prelude::*;

simd_dispatch!(
    /// Sum of a slice with 16 independent f32 lanes (one AVX-512 register where the CPU has
    /// it: the same per-lane additions whatever the width), finished in f64 in lane order.
    pub(crate) fn lane_sum(x: &[f32]) -> f64 => lane_sum_generic
);

#[inline(always)]
fn lane_sum_generic(x: &[f32]) -> f64 {
    let mut acc = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| f64::from(v)).sum();
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + tail
}

/// `Σ_b f(ch, (b·c + ch)·hw)` for every channel `ch` of an `[n, c, hw]` tensor: `f` gives a
/// plane's `K` sums from its channel and its offset (a bias gradient's, batch norm's). The planes are visited in memory order, in parallel over fixed runs
/// of images (about [`ELEMENTWISE_CHUNK`] elements, whatever the thread count), each run's
/// sums and then the runs' added in order in f64.
pub(crate) fn channel_plane_sums<const K: usize>(
    [n, c, hw]: [usize; 3],
    f: impl Fn(usize, usize) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let images = (ELEMENTWISE_CHUNK / (c * hw).max(1)).max(1);
    let runs: Vec<Vec<[f64; K]>> = (0..n.div_ceil(images))
        .into_par_iter()
        .map(|r| {
            let mut acc = vec![[0f64; K]; c];
            for b in r * images..((r + 1) * images).min(n) {
                for (ch, a) in acc.iter_mut().enumerate() {
                    for (a, v) in a.iter_mut().zip(f(ch, (b * c + ch) * hw)) {
                        *a += v;
                    }
                }
            }
            acc
        })
        .collect();
    let mut total = vec![[0f64; K]; c];
    for run in &runs {
        for (t, r) in total.iter_mut().zip(run) {
            for (t, v) in t.iter_mut().zip(r) {
                *t += v;
            }
        }
    }
    total
}

/// `acc[ch] += Σ plane ch` for each image of `x` (`[images, c, hw]`, `c = acc.len()`), in image
/// order: a batch's per-channel sums (a bias gradient), each plane a [`lane_sum`].
pub(crate) fn add_channel_sums(acc: &mut [f64], x: &[f32], hw: usize) {
    let plane = acc.len() * hw;
    if plane == 0 {
        return;
    }
    for img in x.chunks_exact(plane) {
        for (a, p) in acc.iter_mut().zip(img.chunks_exact(hw)) {
            *a += lane_sum(p);
        }
    }
}

/// `out = Σ partials` (per-chunk f64 sums, such as [`add_channel_sums`]'), added in the order
/// given, then rounded to f32 once.
pub(crate) fn sum_partials_in_order(out: &mut [f32], partials: &[Vec<f64>]) {
    let mut total = vec![0f64; out.len()];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    for (o, t) in out.iter_mut().zip(total) {
        *o = t as f32;
    }
}

/// `out += Σ partials`, added in the order given: per-chunk partial results (weight gradients)
/// reduced the same way whatever the thread count.
pub(crate) fn add_in_order(out: &mut [f32], partials: &[Vec<f32>]) {
    for p in partials {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
}
