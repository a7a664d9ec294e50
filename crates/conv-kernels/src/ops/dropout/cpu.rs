//! Dropout on the CPU: fixed chunks in parallel, each element's mask bit from its index.

use super::DropoutHostKernels;
use super::spec::DropoutSpec;
use crate::cpu::{CpuBackend, ELEMENTWISE_CHUNK};
use rayon::prelude::*;

impl DropoutHostKernels for CpuBackend {
    fn dropout(&self, spec: &DropoutSpec, x: &[f32], y: &mut [f32]) {
        let (key, t, scale) = (spec.key(), spec.threshold(), spec.scale());
        y.par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(x.par_chunks(ELEMENTWISE_CHUNK))
            .enumerate()
            .for_each(|(chunk, (yc, xc))| {
                let base = (chunk * ELEMENTWISE_CHUNK) as u32;
                for (j, (o, &v)) in yc.iter_mut().zip(xc).enumerate() {
                    let kept = DropoutSpec::keeps(key, t, base + j as u32);
                    *o = if kept { v * scale } else { 0.0 };
                }
            });
    }
}
