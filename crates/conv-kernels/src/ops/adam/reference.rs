//! Reference Adam update, written as PyTorch's documentation states it.

use super::AdamHostKernels;
use crate::AdamConfig;
use crate::reference::Reference;

fn adam_step(
    cfg: &AdamConfig,
    step: u32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let bc1 = 1.0 - (cfg.beta1 as f64).powi(step as i32);
    let bc2 = 1.0 - (cfg.beta2 as f64).powi(step as i32);
    for i in 0..param.len() {
        let g = grad[i] + cfg.weight_decay * param[i];
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
        let m_hat = m[i] as f64 / bc1;
        let denom = (v[i] as f64).sqrt() / bc2.sqrt() + cfg.eps as f64;
        param[i] = (param[i] as f64 - cfg.lr as f64 * m_hat / denom) as f32;
    }
}

impl AdamHostKernels for Reference {
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
