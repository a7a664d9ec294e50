//! Dropout on the GPU (`shaders/dropout.wgsl`): the mask is drawn in the shader from the key
//! and each element's index; nothing but the two key words and the threshold leaves the host.

use super::DropoutKernels;
use super::spec::DropoutSpec;
use crate::device::DeviceTensor;
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::w;
use std::sync::Arc;

static SHADER: Shader = Shader {
    name: "dropout.wgsl",
    source: include_str!("../../../shaders/dropout.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

impl DropoutKernels for Arc<GpuContext> {
    fn dropout(&self, spec: &DropoutSpec, x: &DeviceTensor) -> Result<DeviceTensor> {
        const OP: &str = "dropout";
        let len = x.numel();
        let y = self.alloc(OP, len)?;
        let key = spec.key();
        if len > 0 {
            self.dispatch(Dispatch {
                shader: &SHADER,
                entry: "dropout",
                consts: Vec::new(),
                params: &[
                    w(len),
                    key[0],
                    key[1],
                    spec.threshold(),
                    spec.scale().to_bits(),
                    0,
                    0,
                    0,
                ],
                bindings: &[(1, x.gpu(self, OP)?), (2, &y)],
                invocations: len as u64,
                workgroup: 256,
            })?;
        }
        Ok(DeviceTensor::from_gpu(self, x.shape().clone(), y))
    }
}
