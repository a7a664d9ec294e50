//! Reference SGD update, written as PyTorch's documentation states it.

use super::SgdHostKernels;
use crate::SgdConfig;
use crate::reference::Reference;

fn sgd_step(cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]) {
    for i in 0..param.len() {
        let mut d = grad[i] + cfg.weight_decay * param[i];
        if cfg.momentum > 0.0 {
            momentum[i] = cfg.momentum * momentum[i] + d;
            d = if cfg.nesterov {
                d + cfg.momentum * momentum[i]
            } else {
                momentum[i]
            };
        }
        param[i] -= cfg.lr * d;
    }
}

impl SgdHostKernels for Reference {
    fn sgd_step(&self, cfg: &SgdConfig, param: &mut [f32], grad: &[f32], momentum: &mut [f32]) {
        sgd_step(cfg, param, grad, momentum)
    }
}
