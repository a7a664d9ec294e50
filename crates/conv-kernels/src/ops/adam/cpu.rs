//! Fast in-place Adam update (PyTorch semantics, as in the reference), parallel over chunks.

use super::AdamHostKernels;
use crate::AdamConfig;
use crate::cpu::CpuBackend;
use crate::cpu::ELEMENTWISE_CHUNK;
use rayon::prelude::*;

/// One Adam step with bias correction; `step` counts from 1.
fn adam_step(
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

impl AdamHostKernels for CpuBackend {
    fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
    ) {
        adam_step(cfg, step, param, grad, m, v)
    }
}
