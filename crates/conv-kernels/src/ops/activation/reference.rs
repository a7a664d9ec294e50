//! Reference activations: the scalar definitions of [`Activation`], one element at a time.

use super::ActivationHostKernels;
use crate::Activation;
use crate::reference::Reference;

impl ActivationHostKernels for Reference {
    fn forward(&self, act: Activation, x: &[f32], y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = act.apply(v);
        }
    }
    fn backward(&self, act: Activation, y: &[f32], grad_y: &[f32], grad_x: &mut [f32]) {
        for ((o, &yv), &gy) in grad_x.iter_mut().zip(y).zip(grad_y) {
            *o = gy * act.derivative_from_output(yv);
        }
    }
}
