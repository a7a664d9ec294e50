//! Element-wise updates and reductions (axpy, scale, sum, per-channel sum).
//!
//! Sums are taken per fixed-size chunk (independent of the thread count) with several f32
//! lanes, and the chunks are added in order in f64: deterministic and accurate.

use super::activation::ELEMENTWISE_CHUNK;
use rayon::prelude::*;

/// Sum of a slice with 16 independent f32 lanes (vectorises), finished in f64.
fn lane_sum(x: &[f32]) -> f64 {
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

/// `out += Σ partials`, added in the order given: per-chunk partial results (weight gradients)
/// reduced the same way whatever the thread count.
pub(crate) fn add_in_order(out: &mut [f32], partials: &[Vec<f32>]) {
    for p in partials {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
}

/// `y += alpha * x`.
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(x.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                *o += alpha * v;
            }
        });
}

/// `x *= alpha`.
pub(crate) fn scale(alpha: f32, x: &mut [f32]) {
    x.par_chunks_mut(ELEMENTWISE_CHUNK).for_each(|x| {
        for v in x {
            *v *= alpha;
        }
    });
}

/// Sum of all elements.
pub(crate) fn sum(x: &[f32]) -> f32 {
    let parts: Vec<f64> = x.par_chunks(ELEMENTWISE_CHUNK).map(lane_sum).collect();
    parts.iter().sum::<f64>() as f32
}

/// `out[ch] = Σ_b Σ_i x[b, ch, i]` for `x[n, c, hw]`.
pub(crate) fn channel_sum(n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]) {
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
        let mut total = vec![0f64; c];
        for p in &parts {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        for (o, t) in out.iter_mut().zip(total) {
            *o = t as f32;
        }
        return;
    }
    let imgs = (ELEMENTWISE_CHUNK / plane).max(1);
    let parts: Vec<Vec<f64>> = x
        .par_chunks(imgs * plane)
        .map(|xc| {
            let mut acc = vec![0f64; c];
            for img in xc.chunks(plane) {
                for (a, p) in acc.iter_mut().zip(img.chunks(hw)) {
                    *a += lane_sum(p);
                }
            }
            acc
        })
        .collect();
    let mut total = vec![0f64; c];
    for p in &parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    for (o, t) in out.iter_mut().zip(total) {
        *o = t as f32;
    }
}
