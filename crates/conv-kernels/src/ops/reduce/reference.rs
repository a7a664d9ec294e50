//! Reference sums, in f64.

use super::ReduceHostKernels;
use crate::reference::Reference;

impl ReduceHostKernels for Reference {
    fn sum(&self, x: &[f32]) -> f32 {
        x.iter().map(|&v| v as f64).sum::<f64>() as f32
    }
    fn channel_sum(&self, n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]) {
        for (ch, o) in out.iter_mut().enumerate().take(c) {
            let mut s = 0f64;
            for b in 0..n {
                let base = (b * c + ch) * hw;
                s += x[base..base + hw].iter().map(|&v| v as f64).sum::<f64>();
            }
            *o = s as f32;
        }
    }
}
