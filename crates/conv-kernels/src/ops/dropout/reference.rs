//! Reference dropout: the mask bit of every element evaluated in turn.

use super::DropoutHostKernels;
use super::spec::DropoutSpec;
use crate::reference::Reference;

impl DropoutHostKernels for Reference {
    fn dropout(&self, spec: &DropoutSpec, x: &[f32], y: &mut [f32]) {
        let (key, t, scale) = (spec.key(), spec.threshold(), spec.scale());
        for (i, (o, &v)) in y.iter_mut().zip(x).enumerate() {
            *o = if DropoutSpec::keeps(key, t, i as u32) {
                v * scale
            } else {
                0.0
            };
        }
    }
}
