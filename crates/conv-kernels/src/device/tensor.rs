//! Tensors on a device: f32 [`DeviceTensor`]s and u32 [`IndexTensor`]s. Each knows where its
//! storage lives (host memory, or a buffer of one GPU context), so it can be read back on its
//! own; ops reach their storage through the crate-internal accessors here, which turn a tensor
//! of the wrong device into [`KernelError::DeviceMismatch`].

use crate::error::{KernelError, Result, shape_err};
use crate::gpu::GpuContext;
use crate::gpu::pool::GpuBuffer;
use crate::host_buffer::HostBuffer;
use std::sync::Arc;
use tensor::{Shape, Tensor};

/// f32 data on one device, with its shape. Cloning is cheap (shared storage); writing to a
/// shared tensor copies it first.
#[derive(Clone, Debug)]
pub struct DeviceTensor {
    shape: Shape,
    storage: Storage,
}

#[derive(Clone, Debug)]
enum Storage {
    Host(Arc<HostBuffer>),
    Gpu(Arc<GpuBuffer>, Arc<GpuContext>),
}

/// u32 data on one device: class labels, or max-pooling arg-max offsets.
#[derive(Clone, Debug)]
pub struct IndexTensor {
    len: usize,
    /// Largest value held (known at upload; `None` for kernel-produced indices).
    max_value: Option<u32>,
    storage: IndexStorage,
}

#[derive(Clone, Debug)]
enum IndexStorage {
    Host(Arc<Vec<u32>>),
    Gpu(Arc<GpuBuffer>, Arc<GpuContext>),
}

/// The first `f32` of a read-back (a scalar's value).
pub(crate) fn first_word(ctx: &GpuContext, bytes: &[u8]) -> Result<f32> {
    words_to_f32(bytes)
        .first()
        .copied()
        .ok_or_else(|| ctx.fault("read-back", "empty read-back"))
}

fn words_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn words_to_u32(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn mismatch(op: &'static str, wanted: String, found: String) -> KernelError {
    KernelError::DeviceMismatch {
        op,
        left: wanted,
        right: found,
    }
}

impl DeviceTensor {
    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// Whether the data lives in GPU memory.
    pub fn is_gpu(&self) -> bool {
        matches!(self.storage, Storage::Gpu(..))
    }

    /// Where the data lives, in words (`host memory`, `gpu: <adapter>`).
    pub fn location(&self) -> String {
        match &self.storage {
            Storage::Host(_) => "host memory".to_string(),
            Storage::Gpu(_, ctx) => format!("gpu: {}", ctx.info()),
        }
    }

    /// The same storage viewed with new dimensions of the same element count (no copy).
    pub fn reshape(&self, dims: &[usize]) -> Result<DeviceTensor> {
        let to = Shape::new(dims)?;
        if to.numel() != self.numel() {
            return Err(shape_err(
                "reshape",
                "element count",
                format!("{} (from {})", self.numel(), self.shape),
                format!("{} (to {to})", to.numel()),
            ));
        }
        Ok(DeviceTensor {
            shape: to,
            storage: self.storage.clone(),
        })
    }

    /// Copies the data to a host [`Tensor`] (a GPU read-back waits for pending work).
    pub fn to_host(&self) -> Result<Tensor> {
        let data = match &self.storage {
            Storage::Host(v) => v.to_vec(),
            Storage::Gpu(b, ctx) => words_to_f32(&ctx.read(b)?),
        };
        Ok(Tensor::new(self.shape.clone(), data)?)
    }

    /// Reads back a one-element tensor (a loss, a count).
    pub fn read_scalar(&self) -> Result<f32> {
        self.expect_scalar()?;
        match &self.storage {
            Storage::Host(v) => Ok(v[0]),
            Storage::Gpu(b, ctx) => first_word(ctx, &ctx.read(b)?),
        }
    }

    /// Fails unless this holds exactly one element.
    pub(crate) fn expect_scalar(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(shape_err(
                "read_scalar",
                "tensor",
                "one element",
                &self.shape,
            ));
        }
        Ok(())
    }

    /// Whether the data lives on `device` (host memory for the reference and CPU devices).
    pub fn is_on(&self, device: &crate::Device) -> bool {
        match (&self.storage, device) {
            (Storage::Host(_), crate::Device::Reference | crate::Device::Cpu(_)) => true,
            (Storage::Gpu(b, _), crate::Device::Gpu(ctx)) => b.ctx_id == ctx.id(),
            _ => false,
        }
    }

    /// A host tensor over `data` (which must hold `shape.numel()` elements).
    pub(crate) fn from_host(shape: Shape, data: impl Into<HostBuffer>) -> Self {
        DeviceTensor {
            shape,
            storage: Storage::Host(Arc::new(data.into())),
        }
    }

    /// A tensor over a buffer of `ctx`.
    pub(crate) fn from_gpu(ctx: &Arc<GpuContext>, shape: Shape, buf: GpuBuffer) -> Self {
        DeviceTensor {
            shape,
            storage: Storage::Gpu(Arc::new(buf), ctx.clone()),
        }
    }

    /// A host output of `dims` for a kernel to overwrite (recycled storage, contents unspecified).
    pub(crate) fn host_output(dims: &[usize]) -> Result<(Shape, HostBuffer)> {
        let shape = Shape::new(dims)?;
        let data = HostBuffer::scratch(shape.numel());
        Ok((shape, data))
    }

    /// The host data, or a mismatch error naming `op` when it lives on a GPU.
    pub(crate) fn host(&self, op: &'static str) -> Result<&[f32]> {
        match &self.storage {
            Storage::Host(v) => Ok(v),
            Storage::Gpu(..) => Err(mismatch(op, "host memory".into(), self.location())),
        }
    }

    /// Whether another tensor shares these host data, so that writing them in place would copy
    /// them first (false on a GPU).
    pub(crate) fn is_shared(&self) -> bool {
        match &self.storage {
            Storage::Host(v) => Arc::strong_count(v) > 1 || Arc::weak_count(v) > 0,
            Storage::Gpu(..) => false,
        }
    }

    /// Mutable host data (copied first when another tensor shares it).
    pub(crate) fn host_mut(&mut self, op: &'static str) -> Result<&mut [f32]> {
        let loc = self.location();
        match &mut self.storage {
            Storage::Host(v) => Ok(&mut Arc::make_mut(v)[..]),
            Storage::Gpu(..) => Err(mismatch(op, "host memory".into(), loc)),
        }
    }

    /// The GPU buffer on `ctx`, or a mismatch error naming `op`.
    pub(crate) fn gpu(&self, ctx: &GpuContext, op: &'static str) -> Result<&GpuBuffer> {
        match &self.storage {
            Storage::Gpu(b, _) if b.ctx_id == ctx.id() => Ok(b),
            _ => Err(mismatch(
                op,
                format!("gpu: {}", ctx.info()),
                self.location(),
            )),
        }
    }

    /// The GPU buffer on `ctx` for writing in place: copied first when another tensor shares
    /// it (the same copy-on-write semantics as host tensors).
    pub(crate) fn gpu_mut(&mut self, ctx: &GpuContext, op: &'static str) -> Result<&GpuBuffer> {
        self.gpu(ctx, op)?;
        let Storage::Gpu(b, _) = &mut self.storage else {
            return Err(mismatch(
                op,
                format!("gpu: {}", ctx.info()),
                "host memory".into(),
            ));
        };
        if Arc::get_mut(b).is_none() {
            let copy = ctx.copy(op, b)?;
            *b = Arc::new(copy);
        }
        Ok(b)
    }
}

impl IndexTensor {
    /// Number of indices.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no index.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest value, when known (indices uploaded from the host).
    pub fn max_value(&self) -> Option<u32> {
        self.max_value
    }

    /// Copies the indices back to the host.
    pub fn to_host(&self) -> Result<Vec<u32>> {
        match &self.storage {
            IndexStorage::Host(v) => Ok(v.to_vec()),
            IndexStorage::Gpu(b, ctx) => Ok(words_to_u32(&ctx.read(b)?)),
        }
    }

    /// Host indices (`max_value` computed from them).
    pub(crate) fn from_host(values: Vec<u32>) -> Self {
        IndexTensor {
            len: values.len(),
            max_value: values.iter().copied().max(),
            storage: IndexStorage::Host(Arc::new(values)),
        }
    }

    /// Kernel-produced host indices (no known maximum).
    pub(crate) fn from_host_kernel(values: Vec<u32>) -> Self {
        IndexTensor {
            len: values.len(),
            max_value: None,
            storage: IndexStorage::Host(Arc::new(values)),
        }
    }

    /// Indices in a buffer of `ctx`, with their maximum when known.
    pub(crate) fn from_gpu(
        ctx: &Arc<GpuContext>,
        len: usize,
        max_value: Option<u32>,
        buf: GpuBuffer,
    ) -> Self {
        IndexTensor {
            len,
            max_value,
            storage: IndexStorage::Gpu(Arc::new(buf), ctx.clone()),
        }
    }

    fn location(&self) -> String {
        match &self.storage {
            IndexStorage::Host(_) => "host memory".to_string(),
            IndexStorage::Gpu(_, ctx) => format!("gpu: {}", ctx.info()),
        }
    }

    /// The host indices, or a mismatch error naming `op`.
    pub(crate) fn host(&self, op: &'static str) -> Result<&[u32]> {
        match &self.storage {
            IndexStorage::Host(v) => Ok(v),
            IndexStorage::Gpu(..) => Err(mismatch(op, "host memory".into(), self.location())),
        }
    }

    /// The GPU buffer on `ctx`, or a mismatch error naming `op`.
    pub(crate) fn gpu(&self, ctx: &GpuContext, op: &'static str) -> Result<&GpuBuffer> {
        match &self.storage {
            IndexStorage::Gpu(b, _) if b.ctx_id == ctx.id() => Ok(b),
            _ => Err(mismatch(
                op,
                format!("gpu: {}", ctx.info()),
                self.location(),
            )),
        }
    }
}

/// Checks that `got` equals `want` for input `what` of `op`.
pub(crate) fn same_shape(op: &'static str, what: &str, want: &Shape, got: &Shape) -> Result<()> {
    if want != got {
        return Err(shape_err(op, what, want, got));
    }
    Ok(())
}
