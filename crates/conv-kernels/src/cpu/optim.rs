//! In-place optimizer updates (PyTorch semantics, as in the reference).

use super::activation::ELEMENTWISE_CHUNK;
use crate::spec::{AdamConfig, SgdConfig};
use rayon::prelude::*;

/// One SGD step; `momentum` is empty when `cfg.momentum == 0`.
pub(crate) fn sgd_step(cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]) {
    let (lr, mu, wd) = (cfg.lr, cfg.momentum, cfg.weight_decay);
    if mu > 0.0 {
        param
            .par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(grad.par_chunks(ELEMENTWISE_CHUNK))
            .zip(momentum.par_chunks_mut(ELEMENTWISE_CHUNK))
            .for_each(|((p, g), m)| {
                for ((p, &g), m) in p.iter_mut().zip(g).zip(m) {
                    let d = g + wd * *p;
                    *m = mu * *m + d;
                    let step = if cfg.nesterov { d + mu * *m } else { *m };
                    *p -= lr * step;
                }
            });
    } else {
        param
            .par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(grad.par_chunks(ELEMENTWISE_CHUNK))
            .for_each(|(p, g)| {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p -= lr * (g + wd * *p);
                }
            });
    }
}

/// One Adam step with bias correction; `step` counts from 1.
pub(crate) fn adam_step(
    cfg: &AdamConfig,
    step: u32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let step = i32::try_from(step).unwrap_or(i32::MAX);
    let bc1 = 1.0 - f64::from(cfg.beta1).powi(step);
    let bc2 = 1.0 - f64::from(cfg.beta2).powi(step);
    // param -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
    let step_size = (f64::from(cfg.lr) / bc1) as f32;
    let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
    let (b1, b2, eps, wd) = (cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    param
        .par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(grad.par_chunks(ELEMENTWISE_CHUNK))
        .zip(m.par_chunks_mut(ELEMENTWISE_CHUNK))
        .zip(v.par_chunks_mut(ELEMENTWISE_CHUNK))
        .for_each(|(((p, g), m), v)| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                let g = g + wd * *p;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let denom = v.sqrt() * inv_sqrt_bc2 + eps;
                *p -= step_size * *m / denom;
            }
        });
}
