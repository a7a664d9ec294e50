//! Fast in-place SGD update (PyTorch semantics, as in the reference), parallel over chunks.

use super::SgdHostKernels;
use crate::SgdConfig;
use crate::cpu::CpuBackend;
use crate::cpu::ELEMENTWISE_CHUNK;
use rayon::prelude::*;

/// One SGD step; `momentum` is empty when `cfg.momentum == 0`.
fn sgd_step(cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]) {
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

impl SgdHostKernels for CpuBackend {
    fn sgd_step(&self, cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]) {
        sgd_step(cfg, param, grad, momentum)
    }
}
