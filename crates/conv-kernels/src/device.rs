//! Devices and the tensors that live on them: the one place ops are dispatched to a backend.
//!
//! Every op validates its inputs through its spec, then runs on the device of its operands.
//! On the GPU nothing crosses back to the host until [`Device::to_host`] or
//! [`Device::read_scalar`] is called. Combining tensors from different devices is a
//! [`KernelError::DeviceMismatch`], never a panic.

use crate::cpu::CpuBackend;
use crate::error::{KernelError, Result, shape_err};
use crate::gpu::pool::GpuBuffer;
use crate::gpu::{self, GpuContext, PoolStats, TransferStats};
use crate::host::HostKernels;
use crate::host_buffer::HostBuffer;
use crate::reference::Reference;
use crate::spec::{
    Activation, AdamConfig, Conv2dSpec, CrossEntropyGeometry, MatmulSpec, Pool2dSpec, PoolKind,
    SgdConfig,
};
use std::sync::Arc;
use tensor::{Shape, Tensor};

/// Where tensors live and ops run.
#[derive(Clone)]
pub enum Device {
    /// The naive reference kernels on the host: slow, obviously right; the test oracle.
    Reference,
    /// The fast CPU backend (im2col + GEMM, rayon).
    Cpu(Arc<CpuBackend>),
    /// WGSL compute shaders through wgpu; tensors live in GPU buffers.
    Gpu(Arc<GpuContext>),
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.name())
    }
}

/// A device picked by [`Device::auto`] or [`Device::select`], with the one-line reason.
#[derive(Clone, Debug)]
pub struct DeviceChoice {
    /// The device to use.
    pub device: Device,
    /// Why it was chosen, e.g. `no hardware GPU adapter ...; using the CPU backend`.
    pub reason: String,
}

/// f32 data on one device, with its shape. Cloning is cheap (shared storage).
#[derive(Clone, Debug)]
pub struct DeviceTensor {
    shape: Shape,
    storage: Storage,
}

#[derive(Clone, Debug)]
enum Storage {
    Host(Arc<HostBuffer>),
    Gpu(Arc<GpuBuffer>),
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
    Gpu(Arc<GpuBuffer>),
}
/// Gradients of a convolution.
#[derive(Clone, Debug)]
pub struct Conv2dGrads {
    /// Gradient of the input (`None` when not asked for, e.g. for the first layer).
    pub input: Option<DeviceTensor>,
    /// Gradient of the weight.
    pub weight: DeviceTensor,
    /// Gradient of the bias (`None` when the conv has none).
    pub bias: Option<DeviceTensor>,
}

/// Gradients of a linear layer `y = x · Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct LinearGrads {
    /// Gradient of the input.
    pub input: DeviceTensor,
    /// Gradient of the weight.
    pub weight: DeviceTensor,
    /// Gradient of the bias (`None` when the layer has none).
    pub bias: Option<DeviceTensor>,
}

/// Result of a pooling forward pass.
#[derive(Clone, Debug)]
pub struct PoolOutput {
    /// The pooled tensor.
    pub output: DeviceTensor,
    /// For max pooling, the winning offset per output element (input to backward).
    pub argmax: Option<IndexTensor>,
}

/// Result of the fused softmax cross-entropy.
#[derive(Clone, Debug)]
pub struct CrossEntropyOutput {
    /// Mean loss, a rank-0 tensor on the device.
    pub loss: DeviceTensor,
    /// Count of correct predictions, a rank-0 tensor on the device.
    pub correct: DeviceTensor,
    /// Gradient of the mean loss with respect to the logits.
    pub grad_logits: DeviceTensor,
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
        matches!(self.storage, Storage::Gpu(_))
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

    fn location(&self) -> &'static str {
        match self.storage {
            Storage::Host(_) => "a host tensor",
            Storage::Gpu(_) => "a GPU tensor",
        }
    }

    fn from_host(shape: Shape, data: impl Into<HostBuffer>) -> Self {
        DeviceTensor {
            shape,
            storage: Storage::Host(Arc::new(data.into())),
        }
    }

    fn from_gpu(shape: Shape, buf: GpuBuffer) -> Self {
        DeviceTensor {
            shape,
            storage: Storage::Gpu(Arc::new(buf)),
        }
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
}

fn same_shape(op: &'static str, what: &str, want: &Shape, got: &Shape) -> Result<()> {
    if want != got {
        return Err(shape_err(op, what, want, got));
    }
    Ok(())
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

fn env_device() -> Option<String> {
    std::env::var("FOVEA_DEVICE")
        .ok()
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

impl Device {
    /// The fast CPU backend with default settings.
    pub fn cpu() -> Device {
        Device::Cpu(Arc::new(CpuBackend::new()))
    }

    /// The process-wide GPU context on the best adapter, software adapters (llvmpipe) included;
    /// [`KernelError::NoAdapter`] with the reason when there is none.
    pub fn gpu() -> Result<Device> {
        Ok(Device::Gpu(GpuContext::shared(true)?))
    }

    /// Picks a device: a hardware GPU when one answers in time, otherwise the CPU backend.
    /// The environment variable `FOVEA_DEVICE` overrides: `cpu` forces the CPU backend without
    /// touching any GPU driver; `gpu` also accepts a software adapter (llvmpipe), falling back to
    /// the CPU backend with the reason when none exists. Never fails.
    pub fn auto() -> DeviceChoice {
        let cpu = |reason: String| DeviceChoice {
            device: Device::cpu(),
            reason,
        };
        match env_device().as_deref() {
            Some("cpu") => cpu("FOVEA_DEVICE=cpu: using the CPU backend".into()),
            Some("gpu") => match GpuContext::shared(true) {
                Ok(ctx) => DeviceChoice {
                    reason: format!("FOVEA_DEVICE=gpu: using {}", ctx.info()),
                    device: Device::Gpu(ctx),
                },
                Err(e) => cpu(format!("FOVEA_DEVICE=gpu but {e}; using the CPU backend")),
            },
            Some(other) if other != "auto" => {
                let mut c = Self::auto_hardware();
                c.reason = format!(
                    "FOVEA_DEVICE={other} not understood (auto, cpu or gpu); {}",
                    c.reason
                );
                c
            }
            _ => Self::auto_hardware(),
        }
    }

    fn auto_hardware() -> DeviceChoice {
        match GpuContext::shared(false) {
            Ok(ctx) => DeviceChoice {
                reason: format!("hardware GPU found: {}", ctx.info()),
                device: Device::Gpu(ctx),
            },
            Err(e) => DeviceChoice {
                device: Device::cpu(),
                reason: format!("{e}; using the CPU backend"),
            },
        }
    }

    /// The device named by `pref` (`auto`, `cpu`, `gpu` or `reference`, as `--device` takes
    /// it). `gpu` fails with [`KernelError::NoAdapter`] when no adapter exists; `auto` never fails.
    pub fn select(pref: &str) -> Result<DeviceChoice> {
        match pref.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceChoice {
                device: Device::cpu(),
                reason: "CPU backend requested".into(),
            }),
            "reference" => Ok(DeviceChoice {
                device: Device::Reference,
                reason: "reference kernels requested".into(),
            }),
            "gpu" => {
                let ctx = GpuContext::shared(true)?;
                Ok(DeviceChoice {
                    reason: format!("GPU requested: {}", ctx.info()),
                    device: Device::Gpu(ctx),
                })
            }
            "auto" | "" => Ok(Self::auto()),
            other => Err(crate::error::spec_err(
                "device",
                format!("unknown device {other:?}: expected auto, cpu, gpu or reference"),
            )),
        }
    }

    /// A human-readable name (e.g. `cpu`, or the GPU adapter's name).
    pub fn name(&self) -> String {
        match self {
            Device::Reference => "reference (naive CPU)".to_string(),
            Device::Cpu(_) => "cpu".to_string(),
            Device::Gpu(ctx) => format!("gpu: {}", ctx.info()),
        }
    }

    /// Whether this is a GPU device.
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    /// The GPU context, for GPU devices.
    pub fn gpu_context(&self) -> Option<&Arc<GpuContext>> {
        match self {
            Device::Gpu(ctx) => Some(ctx),
            _ => None,
        }
    }

    /// Host↔device transfer counters (all zero on host devices, where nothing is transferred).
    pub fn transfer_stats(&self) -> TransferStats {
        self.gpu_context()
            .map(|c| c.transfer_stats())
            .unwrap_or_default()
    }

    /// GPU buffer-pool counters (`None` on host devices).
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.gpu_context().map(|c| c.pool_stats())
    }

    /// Waits until every op issued so far has finished (a no-op on host devices).
    pub fn synchronize(&self) -> Result<()> {
        match self {
            Device::Gpu(ctx) => ctx.synchronize(),
            _ => Ok(()),
        }
    }

    fn kernels(&self) -> &dyn HostKernels {
        match self {
            Device::Reference | Device::Gpu(_) => &Reference,
            Device::Cpu(c) => c.as_ref(),
        }
    }

    fn mismatch(&self, op: &'static str, t: &'static str) -> KernelError {
        KernelError::DeviceMismatch {
            op,
            left: self.name(),
            right: t.to_string(),
        }
    }

    /// The host data of `t`, or a mismatch error when it lives on a GPU.
    fn hv<'a>(&self, op: &'static str, t: &'a DeviceTensor) -> Result<&'a [f32]> {
        match &t.storage {
            Storage::Host(v) => Ok(v),
            Storage::Gpu(_) => Err(self.mismatch(op, t.location())),
        }
    }

    /// Mutable host data (copy-on-write when shared).
    fn hv_mut<'a>(&self, op: &'static str, t: &'a mut DeviceTensor) -> Result<&'a mut [f32]> {
        let loc = t.location();
        match &mut t.storage {
            Storage::Host(v) => Ok(&mut Arc::make_mut(v)[..]),
            Storage::Gpu(_) => Err(self.mismatch(op, loc)),
        }
    }

    fn hidx<'a>(&self, op: &'static str, t: &'a IndexTensor) -> Result<&'a [u32]> {
        match &t.storage {
            IndexStorage::Host(v) => Ok(v),
            IndexStorage::Gpu(_) => Err(self.mismatch(op, "GPU indices")),
        }
    }

    /// The GPU buffer of `t` on this context, or a mismatch error.
    fn gb<'a>(
        &self,
        ctx: &GpuContext,
        op: &'static str,
        t: &'a DeviceTensor,
    ) -> Result<&'a GpuBuffer> {
        match &t.storage {
            Storage::Gpu(b) if b.ctx_id == ctx.id() => Ok(b),
            Storage::Gpu(_) => Err(self.mismatch(op, "a tensor of another GPU context")),
            Storage::Host(_) => Err(self.mismatch(op, t.location())),
        }
    }

    /// The GPU buffer of `t` for writing in place: copied first when another tensor shares it
    /// (the same copy-on-write semantics as host tensors).
    fn gb_mut<'a>(
        &self,
        ctx: &GpuContext,
        op: &'static str,
        t: &'a mut DeviceTensor,
    ) -> Result<&'a GpuBuffer> {
        self.gb(ctx, op, t)?;
        let Storage::Gpu(b) = &mut t.storage else {
            return Err(self.mismatch(op, "a host tensor"));
        };
        if Arc::get_mut(b).is_none() {
            let copy = ctx.copy(op, b)?;
            *b = Arc::new(copy);
        }
        Ok(b)
    }

    fn gidx<'a>(
        &self,
        ctx: &GpuContext,
        op: &'static str,
        t: &'a IndexTensor,
    ) -> Result<&'a GpuBuffer> {
        match &t.storage {
            IndexStorage::Gpu(b) if b.ctx_id == ctx.id() => Ok(b),
            IndexStorage::Gpu(_) => Err(self.mismatch(op, "indices of another GPU context")),
            IndexStorage::Host(_) => Err(self.mismatch(op, "host indices")),
        }
    }

    /// Output storage for a host kernel (recycled, contents unspecified: kernels overwrite it).
    fn alloc(&self, dims: &[usize]) -> Result<(Shape, HostBuffer)> {
        let shape = Shape::new(dims)?;
        let data = HostBuffer::scratch(shape.numel());
        Ok((shape, data))
    }

    /// Copies a host tensor onto the device.
    pub fn upload(&self, t: &Tensor) -> Result<DeviceTensor> {
        match self {
            Device::Gpu(ctx) => {
                let buf = ctx.upload("upload", bytemuck::cast_slice(t.data()), t.numel())?;
                Ok(DeviceTensor::from_gpu(t.shape().clone(), buf))
            }
            _ => {
                let mut data = HostBuffer::scratch(t.numel());
                data.copy_from_slice(t.data());
                Ok(DeviceTensor::from_host(t.shape().clone(), data))
            }
        }
    }

    /// Moves a host tensor onto the device (no copy on host devices).
    pub fn upload_owned(&self, t: Tensor) -> Result<DeviceTensor> {
        if self.is_gpu() {
            return self.upload(&t);
        }
        let shape = t.shape().clone();
        Ok(DeviceTensor::from_host(shape, t.into_vec()))
    }

    /// Copies labels (or any u32 indices) onto the device.
    pub fn upload_indices(&self, values: &[u32]) -> Result<IndexTensor> {
        let storage = match self {
            Device::Gpu(ctx) => IndexStorage::Gpu(Arc::new(ctx.upload(
                "upload_indices",
                bytemuck::cast_slice(values),
                values.len(),
            )?)),
            _ => IndexStorage::Host(Arc::new(values.to_vec())),
        };
        Ok(IndexTensor {
            len: values.len(),
            max_value: values.iter().copied().max(),
            storage,
        })
    }

    /// Copies a tensor back to the host.
    pub fn to_host(&self, t: &DeviceTensor) -> Result<Tensor> {
        let data = match self {
            Device::Gpu(ctx) => words_to_f32(&ctx.read(self.gb(ctx, "to_host", t)?)?),
            _ => self.hv("to_host", t)?.to_vec(),
        };
        Ok(Tensor::new(t.shape.clone(), data)?)
    }

    /// Copies indices back to the host.
    pub fn indices_to_host(&self, t: &IndexTensor) -> Result<Vec<u32>> {
        match self {
            Device::Gpu(ctx) => Ok(words_to_u32(&ctx.read(self.gidx(
                ctx,
                "indices_to_host",
                t,
            )?)?)),
            _ => Ok(self.hidx("indices_to_host", t)?.to_vec()),
        }
    }

    /// Reads back a one-element tensor (a loss, a count).
    pub fn read_scalar(&self, t: &DeviceTensor) -> Result<f32> {
        if t.numel() != 1 {
            return Err(shape_err("read_scalar", "tensor", "one element", &t.shape));
        }
        match self {
            Device::Gpu(ctx) => words_to_f32(&ctx.read(self.gb(ctx, "read_scalar", t)?)?)
                .first()
                .copied()
                .ok_or_else(|| KernelError::Gpu("empty read-back".into())),
            _ => Ok(self.hv("read_scalar", t)?[0]),
        }
    }

    /// A tensor filled with `value`.
    pub fn full(&self, dims: &[usize], value: f32) -> Result<DeviceTensor> {
        let (shape, mut data) = match self {
            Device::Gpu(ctx) => {
                let shape = Shape::new(dims)?;
                let buf = ctx.alloc("full", shape.numel())?;
                gpu::elementwise::fill(ctx, &buf, value)?;
                return Ok(DeviceTensor::from_gpu(shape, buf));
            }
            _ => self.alloc(dims)?,
        };
        data.fill(value);
        Ok(DeviceTensor::from_host(shape, data))
    }

    /// A tensor of zeros.
    pub fn zeros(&self, dims: &[usize]) -> Result<DeviceTensor> {
        self.full(dims, 0.0)
    }

    /// 2-D convolution (PyTorch `F.conv2d`).
    pub fn conv2d(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        spec: &Conv2dSpec,
    ) -> Result<DeviceTensor> {
        const OP: &str = "conv2d";
        let g = spec.check(&x.shape, &weight.shape, bias.map(|b| &b.shape))?;
        if let Device::Gpu(ctx) = self {
            let b = bias.map(|b| self.gb(ctx, OP, b)).transpose()?;
            let y =
                gpu::conv2d::forward(ctx, &g, self.gb(ctx, OP, x)?, self.gb(ctx, OP, weight)?, b)?;
            return Ok(DeviceTensor::from_gpu(Shape::new(&g.output_dims())?, y));
        }
        let b = bias.map(|b| self.hv(OP, b)).transpose()?;
        let (xs, ws) = (self.hv(OP, x)?, self.hv(OP, weight)?);
        let (shape, mut y) = self.alloc(&g.output_dims())?;
        self.kernels().conv2d(&g, xs, ws, b, &mut y);
        Ok(DeviceTensor::from_host(shape, y))
    }

    /// Gradients of a convolution given its output gradient.
    pub fn conv2d_backward(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        spec: &Conv2dSpec,
        need_input: bool,
        has_bias: bool,
    ) -> Result<Conv2dGrads> {
        const OP: &str = "conv2d_backward";
        let g = spec.check(&x.shape, &weight.shape, None)?;
        same_shape(OP, "grad_y", &Shape::new(&g.output_dims())?, &grad_y.shape)?;
        if let Device::Gpu(ctx) = self {
            let (xb, wb, gyb) = (
                self.gb(ctx, OP, x)?,
                self.gb(ctx, OP, weight)?,
                self.gb(ctx, OP, grad_y)?,
            );
            let input = if need_input {
                let gx = gpu::conv2d::backward_input(ctx, &g, gyb, wb)?;
                Some(DeviceTensor::from_gpu(Shape::new(&g.input_dims())?, gx))
            } else {
                None
            };
            let gw = gpu::conv2d::backward_weight(ctx, &g, xb, gyb)?;
            let bias = if has_bias {
                let gb = gpu::reduce::channel_sum(ctx, g.n, g.c_out, g.oh * g.ow, gyb)?;
                Some(DeviceTensor::from_gpu(Shape::new(&[g.c_out])?, gb))
            } else {
                None
            };
            return Ok(Conv2dGrads {
                input,
                weight: DeviceTensor::from_gpu(Shape::new(&g.weight_dims())?, gw),
                bias,
            });
        }
        let (xs, ws, gys) = (self.hv(OP, x)?, self.hv(OP, weight)?, self.hv(OP, grad_y)?);
        let k = self.kernels();
        let input = if need_input {
            let (shape, mut gx) = self.alloc(&g.input_dims())?;
            k.conv2d_backward_input(&g, gys, ws, &mut gx);
            Some(DeviceTensor::from_host(shape, gx))
        } else {
            None
        };
        let (shape, mut gw) = self.alloc(&g.weight_dims())?;
        k.conv2d_backward_weight(&g, xs, gys, &mut gw);
        let bias = if has_bias {
            let (shape, mut gb) = self.alloc(&[g.c_out])?;
            k.channel_sum(g.n, g.c_out, g.oh * g.ow, gys, &mut gb);
            Some(DeviceTensor::from_host(shape, gb))
        } else {
            None
        };
        Ok(Conv2dGrads {
            input,
            weight: DeviceTensor::from_host(shape, gw),
            bias,
        })
    }

    /// Max or average pooling.
    pub fn pool2d(&self, x: &DeviceTensor, spec: &Pool2dSpec) -> Result<PoolOutput> {
        let op = spec.op_name();
        let g = spec.check(&x.shape)?;
        let shape = Shape::new(&g.output_dims())?;
        if let Device::Gpu(ctx) = self {
            let (y, a) = gpu::pool2d::forward(ctx, &g, self.gb(ctx, op, x)?)?;
            let argmax = a.map(|a| IndexTensor {
                len: shape.numel(),
                max_value: None,
                storage: IndexStorage::Gpu(Arc::new(a)),
            });
            return Ok(PoolOutput {
                output: DeviceTensor::from_gpu(shape, y),
                argmax,
            });
        }
        let xs = self.hv(op, x)?;
        let mut y = HostBuffer::scratch(shape.numel());
        let mut argmax = match spec.kind {
            PoolKind::Max => vec![0u32; y.len()],
            PoolKind::Avg => Vec::new(),
        };
        self.kernels().pool2d(&g, xs, &mut y, &mut argmax);
        let argmax = (spec.kind == PoolKind::Max).then(|| IndexTensor {
            len: argmax.len(),
            max_value: None,
            storage: IndexStorage::Host(Arc::new(argmax)),
        });
        Ok(PoolOutput {
            output: DeviceTensor::from_host(shape, y),
            argmax,
        })
    }

    /// Gradient of pooling with respect to its input of shape `input_dims`.
    pub fn pool2d_backward(
        &self,
        input_dims: &[usize],
        grad_y: &DeviceTensor,
        argmax: Option<&IndexTensor>,
        spec: &Pool2dSpec,
    ) -> Result<DeviceTensor> {
        let op = "pool2d_backward";
        let g = spec.check(&Shape::new(input_dims)?)?;
        same_shape(op, "grad_y", &Shape::new(&g.output_dims())?, &grad_y.shape)?;
        let idx = match (spec.kind, argmax) {
            (PoolKind::Max, Some(a)) if a.len() == grad_y.numel() => Some(a),
            (PoolKind::Max, a) => {
                return Err(shape_err(
                    op,
                    "argmax indices",
                    grad_y.numel(),
                    a.map_or("none".to_string(), |a| a.len().to_string()),
                ));
            }
            (PoolKind::Avg, _) => None,
        };
        let shape = Shape::new(input_dims)?;
        if let Device::Gpu(ctx) = self {
            let a = idx.map(|a| self.gidx(ctx, op, a)).transpose()?;
            let gx = gpu::pool2d::backward(ctx, &g, self.gb(ctx, op, grad_y)?, a)?;
            return Ok(DeviceTensor::from_gpu(shape, gx));
        }
        let a: &[u32] = match idx {
            Some(a) => self.hidx(op, a)?,
            None => &[],
        };
        let gys = self.hv(op, grad_y)?;
        let mut gx = HostBuffer::scratch(shape.numel());
        self.kernels().pool2d_backward(&g, gys, a, &mut gx);
        Ok(DeviceTensor::from_host(shape, gx))
    }

    /// Matrix product with optional transposes and a bias added to every row.
    pub fn matmul(
        &self,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        spec: &MatmulSpec,
    ) -> Result<DeviceTensor> {
        const OP: &str = "matmul";
        let g = spec.check(&a.shape, &b.shape, bias.map(|t| &t.shape))?;
        let shape = Shape::new(&[g.m, g.n])?;
        if let Device::Gpu(ctx) = self {
            let bb = bias.map(|t| self.gb(ctx, OP, t)).transpose()?;
            let c = gpu::matmul::matmul(ctx, &g, self.gb(ctx, OP, a)?, self.gb(ctx, OP, b)?, bb)?;
            return Ok(DeviceTensor::from_gpu(shape, c));
        }
        let bb = bias.map(|t| self.hv(OP, t)).transpose()?;
        let (av, bv) = (self.hv(OP, a)?, self.hv(OP, b)?);
        let mut c = HostBuffer::scratch(shape.numel());
        self.kernels().matmul(&g, av, bv, bb, &mut c);
        Ok(DeviceTensor::from_host(shape, c))
    }

    /// `y = x · Wᵀ + b` with `x [n, in]`, `W [out, in]`, `b [out]` (PyTorch `F.linear`).
    pub fn linear(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        bias: Option<&DeviceTensor>,
    ) -> Result<DeviceTensor> {
        let spec = MatmulSpec {
            trans_a: false,
            trans_b: true,
        };
        self.matmul(x, weight, bias, &spec)
    }

    /// Gradients of [`Device::linear`] given its output gradient.
    pub fn linear_backward(
        &self,
        x: &DeviceTensor,
        weight: &DeviceTensor,
        grad_y: &DeviceTensor,
        has_bias: bool,
    ) -> Result<LinearGrads> {
        const OP: &str = "linear_backward";
        // grad_x[n, in] = grad_y[n, out] · W[out, in]
        let input = self.matmul(grad_y, weight, None, &MatmulSpec::default())?;
        // grad_W[out, in] = grad_yᵀ · x
        let spec_t = MatmulSpec {
            trans_a: true,
            trans_b: false,
        };
        let weight_grad = self.matmul(grad_y, x, None, &spec_t)?;
        let bias = if has_bias {
            let (n, out) = (grad_y.dims()[0], grad_y.dims()[1]);
            let shape = Shape::new(&[out])?;
            Some(match self {
                Device::Gpu(ctx) => {
                    let gb = gpu::reduce::channel_sum(ctx, n, out, 1, self.gb(ctx, OP, grad_y)?)?;
                    DeviceTensor::from_gpu(shape, gb)
                }
                _ => {
                    let mut gb = HostBuffer::scratch(out);
                    self.kernels()
                        .channel_sum(n, out, 1, self.hv(OP, grad_y)?, &mut gb);
                    DeviceTensor::from_host(shape, gb)
                }
            })
        } else {
            None
        };
        Ok(LinearGrads {
            input,
            weight: weight_grad,
            bias,
        })
    }

    /// Element-wise activation.
    pub fn activation(&self, x: &DeviceTensor, act: Activation) -> Result<DeviceTensor> {
        let op = act.op_name();
        if let Device::Gpu(ctx) = self {
            let y = gpu::activation::forward(ctx, act, self.gb(ctx, op, x)?)?;
            return Ok(DeviceTensor::from_gpu(x.shape.clone(), y));
        }
        let xs = self.hv(op, x)?;
        let mut y = HostBuffer::scratch(xs.len());
        self.kernels().activation(act, xs, &mut y);
        Ok(DeviceTensor::from_host(x.shape.clone(), y))
    }

    /// Gradient of an activation from its forward output `y` and the output gradient.
    pub fn activation_backward(
        &self,
        y: &DeviceTensor,
        grad_y: &DeviceTensor,
        act: Activation,
    ) -> Result<DeviceTensor> {
        let op = act.op_name();
        same_shape(op, "grad_y", &y.shape, &grad_y.shape)?;
        if let Device::Gpu(ctx) = self {
            let gx = gpu::activation::backward(
                ctx,
                act,
                self.gb(ctx, op, y)?,
                self.gb(ctx, op, grad_y)?,
            )?;
            return Ok(DeviceTensor::from_gpu(y.shape.clone(), gx));
        }
        let (ys, gys) = (self.hv(op, y)?, self.hv(op, grad_y)?);
        let mut gx = HostBuffer::scratch(ys.len());
        self.kernels().activation_backward(act, ys, gys, &mut gx);
        Ok(DeviceTensor::from_host(y.shape.clone(), gx))
    }

    /// Fused mean softmax cross-entropy, its logits gradient and the correct-prediction count.
    pub fn softmax_cross_entropy(
        &self,
        logits: &DeviceTensor,
        labels: &IndexTensor,
    ) -> Result<CrossEntropyOutput> {
        const OP: &str = "softmax_cross_entropy";
        let g = CrossEntropyGeometry::check(&logits.shape, labels.len())?;
        if let Some(max) = labels.max_value
            && max as usize >= g.classes
        {
            return Err(shape_err(
                OP,
                "label value",
                format!("< {} (the number of classes)", g.classes),
                max,
            ));
        }
        if let Device::Gpu(ctx) = self {
            let (loss, correct, grad) = gpu::loss::softmax_cross_entropy(
                ctx,
                &g,
                self.gb(ctx, OP, logits)?,
                self.gidx(ctx, OP, labels)?,
            )?;
            return Ok(CrossEntropyOutput {
                loss: DeviceTensor::from_gpu(Shape::scalar(), loss),
                correct: DeviceTensor::from_gpu(Shape::scalar(), correct),
                grad_logits: DeviceTensor::from_gpu(logits.shape.clone(), grad),
            });
        }
        let (ls, lab) = (self.hv(OP, logits)?, self.hidx(OP, labels)?);
        let mut grad = HostBuffer::scratch(ls.len());
        let stats = self.kernels().softmax_cross_entropy(&g, ls, lab, &mut grad);
        Ok(CrossEntropyOutput {
            loss: DeviceTensor::from_host(Shape::scalar(), vec![stats.loss]),
            correct: DeviceTensor::from_host(Shape::scalar(), vec![stats.correct as f32]),
            grad_logits: DeviceTensor::from_host(logits.shape.clone(), grad),
        })
    }

    /// One in-place SGD step; `momentum` must be given (zero-started, same shape) when
    /// `cfg.momentum > 0`.
    pub fn sgd_step(
        &self,
        cfg: &SgdConfig,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        momentum: Option<&mut DeviceTensor>,
    ) -> Result<()> {
        const OP: &str = "sgd_step";
        cfg.check()?;
        same_shape(OP, "grad", &param.shape, &grad.shape)?;
        let momentum = match (cfg.momentum > 0.0, momentum) {
            (true, Some(m)) => {
                same_shape(OP, "momentum buffer", &param.shape, &m.shape)?;
                Some(m)
            }
            (true, None) => {
                return Err(shape_err(OP, "momentum buffer", &param.shape, "none"));
            }
            (false, _) => None,
        };
        if let Device::Gpu(ctx) = self {
            let gb = self.gb(ctx, OP, grad)?;
            let mb = match momentum {
                Some(m) => Some(self.gb_mut(ctx, OP, m)?),
                None => None,
            };
            let pb = self.gb_mut(ctx, OP, param)?;
            return gpu::optim::sgd(ctx, cfg, pb, gb, mb);
        }
        let gs = self.hv(OP, grad)?;
        let mut none = [];
        let buf: &mut [f32] = match momentum {
            Some(m) => self.hv_mut(OP, m)?,
            None => &mut none,
        };
        let ps = self.hv_mut(OP, param)?;
        self.kernels().sgd_step(cfg, ps, gs, buf);
        Ok(())
    }

    /// One in-place Adam step (`step` counts from 1); `m` and `v` are zero-started moments.
    pub fn adam_step(
        &self,
        cfg: &AdamConfig,
        step: u32,
        param: &mut DeviceTensor,
        grad: &DeviceTensor,
        m: &mut DeviceTensor,
        v: &mut DeviceTensor,
    ) -> Result<()> {
        const OP: &str = "adam_step";
        cfg.check()?;
        if step == 0 {
            return Err(crate::error::spec_err(OP, "step counts from 1"));
        }
        for (what, t) in [("grad", grad), ("m", &*m), ("v", &*v)] {
            same_shape(OP, what, &param.shape, &t.shape)?;
        }
        if let Device::Gpu(ctx) = self {
            let gb = self.gb(ctx, OP, grad)?;
            let mb = self.gb_mut(ctx, OP, m)?;
            let vb = self.gb_mut(ctx, OP, v)?;
            let pb = self.gb_mut(ctx, OP, param)?;
            return gpu::optim::adam(ctx, cfg, step, pb, gb, mb, vb);
        }
        let gs = self.hv(OP, grad)?;
        let (ms, vs) = (self.hv_mut(OP, m)?, self.hv_mut(OP, v)?);
        let ps = self.hv_mut(OP, param)?;
        self.kernels().adam_step(cfg, step, ps, gs, ms, vs);
        Ok(())
    }

    /// `a + b` element-wise.
    pub fn add(&self, a: &DeviceTensor, b: &DeviceTensor) -> Result<DeviceTensor> {
        const OP: &str = "add";
        same_shape(OP, "b", &a.shape, &b.shape)?;
        if let Device::Gpu(ctx) = self {
            let c = gpu::elementwise::axpby(ctx, self.gb(ctx, OP, a)?, self.gb(ctx, OP, b)?, 1.0)?;
            return Ok(DeviceTensor::from_gpu(a.shape.clone(), c));
        }
        let bs = self.hv(OP, b)?;
        let mut out = a.clone();
        self.kernels().axpy(1.0, bs, self.hv_mut(OP, &mut out)?);
        Ok(out)
    }

    /// `acc += x` in place (gradient accumulation).
    pub fn add_assign(&self, acc: &mut DeviceTensor, x: &DeviceTensor) -> Result<()> {
        const OP: &str = "add_assign";
        same_shape(OP, "x", &acc.shape, &x.shape)?;
        if let Device::Gpu(ctx) = self {
            let xb = self.gb(ctx, OP, x)?;
            let ab = self.gb_mut(ctx, OP, acc)?;
            return gpu::elementwise::axpy_inplace(ctx, ab, xb, 1.0);
        }
        let xs = self.hv(OP, x)?;
        self.kernels().axpy(1.0, xs, self.hv_mut(OP, acc)?);
        Ok(())
    }

    /// `alpha * x`.
    pub fn scale(&self, x: &DeviceTensor, alpha: f32) -> Result<DeviceTensor> {
        const OP: &str = "scale";
        if let Device::Gpu(ctx) = self {
            let y = gpu::elementwise::scale(ctx, self.gb(ctx, OP, x)?, alpha)?;
            return Ok(DeviceTensor::from_gpu(x.shape.clone(), y));
        }
        self.hv(OP, x)?;
        let mut out = x.clone();
        self.kernels().scale(alpha, self.hv_mut(OP, &mut out)?);
        Ok(out)
    }

    /// `x * s` where `s` is a one-element tensor on the device (no read-back on the GPU).
    pub fn scale_by(&self, x: &DeviceTensor, s: &DeviceTensor) -> Result<DeviceTensor> {
        const OP: &str = "scale_by";
        if s.numel() != 1 {
            return Err(shape_err(OP, "scalar", "one element", &s.shape));
        }
        if let Device::Gpu(ctx) = self {
            let y = gpu::elementwise::scale_by(ctx, self.gb(ctx, OP, x)?, self.gb(ctx, OP, s)?)?;
            return Ok(DeviceTensor::from_gpu(x.shape.clone(), y));
        }
        let alpha = self.hv(OP, s)?[0];
        self.scale(x, alpha)
    }

    /// Overwrites every element with `value`.
    pub fn fill(&self, x: &mut DeviceTensor, value: f32) -> Result<()> {
        const OP: &str = "fill";
        if let Device::Gpu(ctx) = self {
            let b = self.gb_mut(ctx, OP, x)?;
            return gpu::elementwise::fill(ctx, b, value);
        }
        self.hv_mut(OP, x)?.fill(value);
        Ok(())
    }

    /// Sum of all elements, as a rank-0 tensor on the device.
    pub fn sum(&self, x: &DeviceTensor) -> Result<DeviceTensor> {
        const OP: &str = "sum";
        if let Device::Gpu(ctx) = self {
            let s = gpu::reduce::sum_all(ctx, self.gb(ctx, OP, x)?, x.numel())?;
            return Ok(DeviceTensor::from_gpu(Shape::scalar(), s));
        }
        let s = self.kernels().sum(self.hv(OP, x)?);
        Ok(DeviceTensor::from_host(Shape::scalar(), vec![s]))
    }

    /// Checks that two tensors can be combined here (kept for GPU/CPU mixing errors).
    pub fn check_same(&self, op: &'static str, other: &Device) -> Result<()> {
        let same = match (self, other) {
            (Device::Gpu(a), Device::Gpu(b)) => a.id() == b.id(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        };
        if !same {
            return Err(KernelError::DeviceMismatch {
                op,
                left: self.name(),
                right: other.name(),
            });
        }
        Ok(())
    }
}
