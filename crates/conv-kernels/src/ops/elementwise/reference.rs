//! Reference element-wise updates: one element at a time.

use super::ElementwiseHostKernels;
use crate::reference::Reference;

impl ElementwiseHostKernels for Reference {
    fn add_into(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = a + b;
        }
    }

    fn axpy(&self, alpha: f32, x: &[f32], y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o += alpha * v;
        }
    }
    fn scale_in_place(&self, alpha: f32, x: &mut [f32]) {
        for v in x {
            *v *= alpha;
        }
    }
}
