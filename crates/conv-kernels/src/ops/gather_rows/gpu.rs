//! Gathers on the GPU (`shaders/gather_rows.wgsl`): one dispatch per gather, or per batch of
//! rows and labels.

use super::spec::GatherGeometry;
use super::{ByteRows, GatherRowsKernels};
use crate::device::{DeviceTensor, IndexTensor};
use crate::error::Result;
use crate::gpu::context::{Dispatch, GpuContext};
use crate::gpu::pipeline::Shader;
use crate::gpu::w;
use std::sync::Arc;
use tensor::Shape;

static SHADER: Shader = Shader {
    name: "gather_rows.wgsl",
    source: include_str!("../../../shaders/gather_rows.wgsl"),
    uniform_bindings: &[],
    texture_bindings: &[],
};

impl GatherRowsKernels for Arc<GpuContext> {
    fn gather_rows(
        &self,
        g: &GatherGeometry,
        table: &ByteRows,
        indices: &IndexTensor,
        values: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "gather_rows";
        let shape = Shape::new(&g.output_dims)?;
        let out = self.alloc(OP, shape.numel())?;
        let total = g.batch * g.row_len;
        if total > 0 {
            self.dispatch(Dispatch {
                shader: &SHADER,
                entry: "gather_rows",
                consts: Vec::new(),
                params: &[w(total), w(g.row_len), 0, 0],
                bindings: &[
                    (1, table.words().gpu(self, OP)?),
                    (2, indices.gpu(self, OP)?),
                    (3, values.gpu(self, OP)?),
                    (4, &out),
                ],
                invocations: total as u64,
                workgroup: 256,
            })?;
        }
        Ok(DeviceTensor::from_gpu(self, shape, out))
    }

    fn gather_indices(&self, src: &IndexTensor, indices: &IndexTensor) -> Result<IndexTensor> {
        const OP: &str = "gather_indices";
        let out = self.alloc(OP, indices.len())?;
        if !indices.is_empty() {
            self.dispatch(Dispatch {
                shader: &SHADER,
                entry: "gather_words",
                consts: Vec::new(),
                params: &[w(indices.len()), 0, 0, 0],
                bindings: &[
                    (1, src.gpu(self, OP)?),
                    (2, indices.gpu(self, OP)?),
                    (5, &out),
                ],
                invocations: indices.len() as u64,
                workgroup: 256,
            })?;
        }
        Ok(IndexTensor::from_gpu(self, indices.len(), None, out))
    }

    fn gather_batch(
        &self,
        g: &GatherGeometry,
        table: &ByteRows,
        labels: &IndexTensor,
        indices: &IndexTensor,
        values: &DeviceTensor,
    ) -> Result<(DeviceTensor, IndexTensor)> {
        const OP: &str = "gather_batch";
        let shape = Shape::new(&g.output_dims)?;
        let out = self.alloc(OP, shape.numel())?;
        let out_labels = self.alloc(OP, indices.len())?;
        let total = g.batch * g.row_len;
        if total + indices.len() > 0 {
            self.dispatch(Dispatch {
                shader: &SHADER,
                entry: "gather_batch",
                consts: Vec::new(),
                params: &[w(total), w(g.row_len), w(indices.len()), 0],
                bindings: &[
                    (1, table.words().gpu(self, OP)?),
                    (2, indices.gpu(self, OP)?),
                    (3, values.gpu(self, OP)?),
                    (4, &out),
                    (5, &out_labels),
                    (6, labels.gpu(self, OP)?),
                ],
                invocations: (total + indices.len()) as u64,
                workgroup: 256,
            })?;
        }
        Ok((
            DeviceTensor::from_gpu(self, shape, out),
            IndexTensor::from_gpu(self, indices.len(), None, out_labels),
        ))
    }
}
