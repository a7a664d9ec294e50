//! Gathers on the GPU (`shaders/gather_rows.wgsl`): one dispatch per gather, or per batch of
//! rows and labels. Rows of a multiple of four bytes are gathered a word (four values) per
//! invocation, others a value per invocation.

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
    uniform_bindings: &[3],
    texture_bindings: &[],
};

/// How a gather's rows are launched.
struct RowLaunch {
    /// The entry point gathering rows alone.
    rows: &'static str,
    /// The entry point gathering rows and labels.
    batch: &'static str,
    /// The binding of the output (`out` or its `vec4` view `out4`).
    out_binding: u32,
    /// Invocations gathering rows: values, or words of four values.
    items: usize,
}

impl RowLaunch {
    fn of(g: &GatherGeometry) -> RowLaunch {
        let total = g.batch * g.row_len;
        if g.row_len.is_multiple_of(4) {
            RowLaunch {
                rows: "gather_rows4",
                batch: "gather_batch4",
                out_binding: 7,
                items: total / 4,
            }
        } else {
            RowLaunch {
                rows: "gather_rows",
                batch: "gather_batch",
                out_binding: 4,
                items: total,
            }
        }
    }
}

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
        let launch = RowLaunch::of(g);
        if launch.items > 0 {
            self.dispatch(Dispatch {
                shader: &SHADER,
                entry: launch.rows,
                consts: Vec::new(),
                params: &[w(launch.items), w(g.row_len), 0, 0],
                bindings: &[
                    (1, table.words().gpu(self, OP)?),
                    (2, indices.gpu(self, OP)?),
                    (3, values.gpu(self, OP)?),
                    (launch.out_binding, &out),
                ],
                invocations: launch.items as u64,
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
        let launch = RowLaunch::of(g);
        if launch.items + indices.len() > 0 {
            self.dispatch(Dispatch {
                shader: &SHADER,
                entry: launch.batch,
                consts: Vec::new(),
                params: &[w(launch.items), w(g.row_len), w(indices.len()), 0],
                bindings: &[
                    (1, table.words().gpu(self, OP)?),
                    (2, indices.gpu(self, OP)?),
                    (3, values.gpu(self, OP)?),
                    (launch.out_binding, &out),
                    (5, &out_labels),
                    (6, labels.gpu(self, OP)?),
                ],
                invocations: (launch.items + indices.len()) as u64,
                workgroup: 256,
            })?;
        }
        Ok((
            DeviceTensor::from_gpu(self, shape, out),
            IndexTensor::from_gpu(self, indices.len(), None, out_labels),
        ))
    }
}
