//! The GPU context: instance, adapter, device and queue, plus the pipeline cache, the buffer pool
//! and the recorder that batches dispatches into one submission until something is read back.

use super::pipeline::{PipelineCache, Shader};
use super::pool::{BufferPool, GpuBuffer, PoolStats};
use super::texture_operands::{self, GpuOperands, TextureOperands};
use crate::error::{KernelError, Result};
use crate::named_choice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

/// Bytes of one dispatch's parameter block (16 words).
const PARAM_BYTES: u64 = 64;
/// Dispatches recorded before a submission is forced.
const MAX_PENDING: u64 = 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Which family of matmul and conv2d kernels a [`GpuContext`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GpuKernels {
    /// Tiled on hardware adapters, flat on software ones (llvmpipe): the context resolves it
    /// once when it opens, so [`GpuContext::kernels`] never returns `Auto`.
    #[default]
    Auto,
    /// Barrier-free register-blocked kernels without workgroup memory (`shaders/matmul.wgsl`,
    /// `shaders/conv2d.wgsl`): the fast choice on software adapters, where barriers are costly.
    Flat,
    /// Workgroup-memory tiled GEMMs with barriers (`shaders/matmul_tiled.wgsl`,
    /// `shaders/conv2d_tiled.wgsl`): the fast choice on hardware GPUs.
    Tiled,
}

impl GpuKernels {
    /// Every choice with its name, in the order help texts list them.
    pub const ALL: [(GpuKernels, &'static str); 3] = [
        (GpuKernels::Auto, "auto"),
        (GpuKernels::Flat, "flat"),
        (GpuKernels::Tiled, "tiled"),
    ];

    /// The name [`GpuKernels::parse`] accepts for this choice.
    pub fn name(self) -> &'static str {
        named_choice::name_of(&Self::ALL, self, "auto")
    }

    /// The name with what it means, as adapter descriptions show it:
    /// `tiled (workgroup memory)`, `flat (barrier-free)` or `auto`.
    pub fn describe(self) -> &'static str {
        match self {
            GpuKernels::Auto => "auto",
            GpuKernels::Flat => "flat (barrier-free)",
            GpuKernels::Tiled => "tiled (workgroup memory)",
        }
    }

    /// Parses `auto`, `flat` or `tiled` (case and surrounding blanks ignored; the empty string
    /// is `auto`).
    pub fn parse(text: &str) -> Result<GpuKernels> {
        named_choice::parse(&Self::ALL, "gpu kernels", "GPU kernels", text)
    }

    /// The choice named by the environment variable `FOVEA_GPU_KERNELS`: `Auto` when it is
    /// unset or blank, an error naming the variable when it is not understood.
    pub fn from_env() -> Result<GpuKernels> {
        named_choice::from_env(&Self::ALL, "gpu kernels", "FOVEA_GPU_KERNELS")
    }

    /// The kernels an adapter runs: `Auto` becomes `Flat` on a software adapter and `Tiled` on
    /// a hardware one; an explicit choice stays.
    pub fn resolve(self, software: bool) -> GpuKernels {
        match self {
            GpuKernels::Auto if software => GpuKernels::Flat,
            GpuKernels::Auto => GpuKernels::Tiled,
            other => other,
        }
    }
}

impl std::fmt::Display for GpuKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GpuKernels {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// How to open a [`GpuContext`].
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Accept a software adapter (llvmpipe, WARP, ...: wgpu's `DeviceType::Cpu`) when no hardware
    /// adapter exists.
    pub allow_software: bool,
    /// How long to wait for the driver to answer the adapter and device requests.
    pub timeout: Duration,
    /// The matmul and conv2d kernels to run (default [`GpuKernels::Auto`]: tiled on hardware
    /// adapters, flat on software ones).
    pub kernels: GpuKernels,
    /// How the kernels read their large operands (default [`GpuOperands::Auto`]: the
    /// faster of storage buffers and textures on a software adapter, by a probe when the
    /// context opens; storage buffers on a hardware one).
    pub operands: GpuOperands,
    /// Time every kernel (see [`GpuContext::kernel_times`]): each launch is submitted and
    /// waited for on its own, so a step runs slower and each time includes one submission's
    /// latency (about 0.1 ms on llvmpipe). Off by default; `FOVEA_GPU_PROFILE=1` turns it on for
    /// the process-wide context.
    pub profile: bool,
    /// Let the flat kernels share loads across a subgroup where the adapter has subgroup
    /// operations of one fixed size (default on; the results are the same either way): one
    /// lane loads a conv weight tap (and, on software adapters, a texel of a matmul's B), the
    /// others take it by `subgroupBroadcast`. On llvmpipe each lane otherwise loads every value
    /// itself, lane by lane.
    pub subgroups: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            allow_software: false,
            timeout: Duration::from_secs(20),
            kernels: GpuKernels::Auto,
            operands: GpuOperands::Auto,
            profile: false,
            subgroups: true,
        }
    }
}

/// What the adapter says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuInfo {
    /// Adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Graphics API in use (`Vulkan`, `Metal`, `Dx12`).
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Whether this is a software rasteriser (device type `Cpu`).
    pub software: bool,
    /// The matmul and conv2d kernels the context runs on it (resolved: never `Auto`).
    pub kernels: GpuKernels,
    /// How the kernels read their large operands on it (resolved: never `Auto`).
    pub operands: GpuOperands,
    /// The lanes of a subgroup when the kernels share loads across one
    /// ([`GpuOptions::subgroups`], and the adapter's subgroups have one fixed size), else `None`.
    pub subgroup_size: Option<u32>,
}

impl std::fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}; kernels: {}",
            self.name,
            self.device_type,
            self.backend,
            self.kernels.describe()
        )?;
        write!(f, ", operands: {}", self.operands)?;
        match self.subgroup_size {
            Some(lanes) => write!(f, ", subgroups of {lanes})"),
            None => write!(f, ")"),
        }
    }
}

/// Host↔device transfer counters of a [`GpuContext`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Host → device copies.
    pub uploads: u64,
    /// Bytes copied host → device.
    pub upload_bytes: u64,
    /// Device → host read-backs (each one waits for the GPU; one may read several tensors).
    pub downloads: u64,
    /// Bytes copied device → host.
    pub download_bytes: u64,
}

/// Work counters of a [`GpuContext`]: how many kernels it launched and in how many
/// submissions (each submission costs a driver round trip; a training step wants few).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandStats {
    /// Kernel launches recorded.
    pub dispatches: u64,
    /// Command buffers submitted to the queue.
    pub submits: u64,
}

#[derive(Default)]
struct Commands {
    dispatches: AtomicU64,
    submits: AtomicU64,
}

#[derive(Default)]
struct Transfers {
    uploads: AtomicU64,
    upload_bytes: AtomicU64,
    downloads: AtomicU64,
    download_bytes: AtomicU64,
}

/// Commands recorded but not yet submitted.
#[derive(Default)]
struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    /// Parameter blocks of the pending dispatches, one slot each.
    params: Vec<u8>,
    slot: u64,
    /// The kernel recorded last: what a failure found at submit or read-back is reported in.
    last_op: &'static str,
    /// Launches per entry point since the context opened.
    by_kernel: std::collections::BTreeMap<&'static str, u64>,
    /// Wall time per entry point, when profiling ([`GpuOptions::profile`]).
    time_by_kernel: std::collections::BTreeMap<&'static str, Duration>,
}

/// One kernel launch.
pub(crate) struct Dispatch<'a> {
    pub(crate) shader: &'static Shader,
    pub(crate) entry: &'static str,
    /// The specialisation constants.
    pub(crate) consts: super::Consts,
    /// Up to 16 words, the shader's `Params` struct in order.
    pub(crate) params: &'a [u32],
    /// Storage buffers by binding number (binding 0 is the parameter block).
    pub(crate) bindings: &'a [(u32, &'a GpuBuffer)],
    /// Invocations needed (the shader ignores the surplus of the last workgroup).
    pub(crate) invocations: u64,
    /// The entry point's workgroup size.
    pub(crate) workgroup: u32,
}

/// An open GPU: adapter, device, queue, pipeline cache, buffer pool and command recorder.
/// Share it through an `Arc` (see [`crate::Device::gpu`]); every method is thread-safe.
pub struct GpuContext {
    id: u64,
    info: GpuInfo,
    limits: wgpu::Limits,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: PipelineCache,
    pool: Arc<BufferPool>,
    rec: Mutex<Recorder>,
    arena: wgpu::Buffer,
    slot_stride: u64,
    transfers: Transfers,
    commands: Commands,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    timeout: Duration,
    /// [`GpuOptions::profile`].
    profile: bool,
    /// Read-only operands read through textures, where the kernels ask for it.
    textures: TextureOperands,
    // Kept alive for the device's lifetime.
    _adapter: wgpu::Adapter,
    _instance: wgpu::Instance,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuContext({})", self.info)
    }
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

struct Opened {
    instance: wgpu::Instance,
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
}

/// A Vulkan instance without the window-system extensions, where wgpu would ask for them
/// (Linux and the BSDs); `None` elsewhere, when Vulkan is not among `desc.backends`, or when the
/// loader refuses (the caller then takes wgpu's usual path, which reports the problem).
///
/// wgpu enables `VK_KHR_wayland_surface` whenever the driver offers it. Mesa's device-select
/// layer then connects to a Wayland compositor each time adapters are listed, and libwayland
/// prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` on stderr where no
/// desktop session exists (ssh, CI, containers). Fovea only computes and never makes a surface,
/// so it asks for no window-system extension; the device-select layer then skips its probe.
#[cfg(all(unix, not(target_vendor = "apple"), not(target_os = "android")))]
fn compute_only_vulkan(desc: &wgpu::InstanceDescriptor) -> Option<wgpu::Instance> {
    use wgpu::hal::vulkan;
    if !desc.backends.contains(wgpu::Backends::VULKAN) {
        return None;
    }
    const WINDOW_SYSTEMS: [&std::ffi::CStr; 3] = [
        c"VK_KHR_wayland_surface",
        c"VK_KHR_xcb_surface",
        c"VK_KHR_xlib_surface",
    ];
    let hal_desc = wgpu::hal::InstanceDescriptor {
        name: "fovea",
        flags: desc.flags,
        memory_budget_thresholds: desc.memory_budget_thresholds,
        backend_options: desc.backend_options.clone(),
        telemetry: None,
        display: None,
    };
    let drop_window_systems: Box<vulkan::CreateInstanceCallback> = Box::new(|args| {
        args.extensions.retain(|e| !WINDOW_SYSTEMS.contains(e));
    });
    // SAFETY: the callback only removes the surface-creation extensions. wgpu-hal 30 checks for
    // each of them before making a surface of that kind (`create_surface_from_wayland`, ...),
    // and Fovea never makes a surface; nothing else depends on them.
    let hal = unsafe { vulkan::Instance::init_with_callback(&hal_desc, Some(drop_window_systems)) }
        .ok()?;
    // SAFETY: `hal` is a live Vulkan instance that wgpu now owns.
    Some(unsafe { wgpu::Instance::from_hal::<wgpu::hal::api::Vulkan>(hal) })
}

/// Where wgpu asks for no window-system extension of its own: its usual instance.
#[cfg(not(all(unix, not(target_vendor = "apple"), not(target_os = "android"))))]
fn compute_only_vulkan(_desc: &wgpu::InstanceDescriptor) -> Option<wgpu::Instance> {
    None
}

/// Instance → best adapter → device, on the calling thread (may block inside the driver).
fn open(opts: &GpuOptions) -> Result<Opened> {
    let native = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    // WGPU_BACKEND may narrow the choice, never add GL (its software path stalls on barriers).
    desc.backends = if (desc.backends & native).is_empty() {
        native
    } else {
        desc.backends & native
    };
    let backends = desc.backends;
    let instance = match compute_only_vulkan(&desc) {
        Some(instance) => instance,
        None => wgpu::Instance::new(desc),
    };
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if adapters.is_empty() {
        return Err(KernelError::NoAdapter(
            "no Vulkan, Metal or DX12 adapter found (is a Vulkan driver such as mesa-vulkan-drivers installed?)"
                .into(),
        ));
    }
    adapters.sort_by_key(|a| rank(a.get_info().device_type));
    let found: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.device_type, i.backend)
        })
        .collect();
    let Some(adapter) = adapters
        .into_iter()
        .find(|a| opts.allow_software || a.get_info().device_type != wgpu::DeviceType::Cpu)
    else {
        return Err(KernelError::NoAdapter(format!(
            "no hardware GPU adapter, only software ones: {} (ask for them with FOVEA_DEVICE=gpu)",
            found.join(", ")
        )));
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("fovea"),
        // Subgroup operations where the adapter has them ([`GpuOptions::subgroups`]).
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        required_limits: adapter.limits(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .map_err(|e| {
        KernelError::NoAdapter(format!(
            "could not open a device on {}: {e}",
            adapter.get_info().name
        ))
    })?;
    Ok(Opened {
        instance,
        adapter,
        device,
        queue,
    })
}

/// Invocations per workgroup of the flat kernels that share loads across subgroups (conv2d's
/// forward and input gradient, matmul).
const FLAT_WORKGROUP: u32 = 64;

/// The size of the adapter's subgroups when the kernels may share loads across them: asked for
/// ([`GpuOptions::subgroups`]), the device has subgroup operations, every subgroup has the
/// same number of lanes (a kernel is specialised for that number), and a flat kernel's
/// workgroup holds whole subgroups (every lane a broadcast reads from exists).
fn fixed_subgroup_size(
    opts: &GpuOptions,
    adapter: &wgpu::AdapterInfo,
    device: &wgpu::Device,
) -> Option<u32> {
    let lanes = adapter.subgroup_min_size;
    let fixed = lanes == adapter.subgroup_max_size;
    let whole = lanes > 0 && FLAT_WORKGROUP.is_multiple_of(lanes);
    (opts.subgroups && fixed && whole && device.features().contains(wgpu::Features::SUBGROUP))
        .then_some(lanes)
}

impl GpuContext {
    /// Opens the best adapter allowed by `opts` (discrete before integrated before virtual;
    /// software only when `opts.allow_software`), waiting at most `opts.timeout` for the driver.
    /// Fails with [`KernelError::NoAdapter`] when there is none; never panics or hangs.
    pub fn new(opts: &GpuOptions) -> Result<GpuContext> {
        let (tx, rx) = mpsc::channel();
        let o = opts.clone();
        std::thread::Builder::new()
            .name("fovea-gpu-open".into())
            .spawn(move || {
                let _ = tx.send(open(&o));
            })
            .map_err(|e| {
                KernelError::NoAdapter(format!("cannot start the GPU probe thread: {e}"))
            })?;
        let opened = match rx.recv_timeout(opts.timeout) {
            Ok(r) => r?,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(KernelError::NoAdapter(format!(
                    "the GPU driver did not answer within {:?}",
                    opts.timeout
                )));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(KernelError::NoAdapter(
                    "the GPU probe thread failed (driver crash?)".into(),
                ));
            }
        };
        Ok(Self::from_opened(opened, opts))
    }

    fn from_opened(o: Opened, opts: &GpuOptions) -> GpuContext {
        let a = o.adapter.get_info();
        let software = a.device_type == wgpu::DeviceType::Cpu;
        let info = GpuInfo {
            name: a.name.clone(),
            backend: format!("{:?}", a.backend),
            device_type: format!("{:?}", a.device_type),
            driver: format!("{} {}", a.driver, a.driver_info).trim().to_string(),
            software,
            kernels: opts.kernels.resolve(software),
            operands: texture_operands::resolve(opts.operands, software, &o.device, &o.queue),
            subgroup_size: fixed_subgroup_size(opts, &a, &o.device),
        };
        let limits = o.device.limits();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&errors);
        o.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string());
            }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_sink = Arc::clone(&lost);
        o.device.set_device_lost_callback(move |reason, msg| {
            *lost_sink.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{reason:?}: {msg}"));
        });
        let align = u64::from(limits.min_uniform_buffer_offset_alignment).max(PARAM_BYTES);
        let slot_stride = PARAM_BYTES.div_ceil(align) * align;
        let arena = o.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fovea-params"),
            size: slot_stride * MAX_PENDING,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let max_buffer = limits.max_buffer_size;
        let textures = TextureOperands::new(info.operands, &limits);
        GpuContext {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            info,
            pool: Arc::new(BufferPool::new(o.device.clone(), max_buffer)),
            limits,
            device: o.device,
            queue: o.queue,
            pipelines: PipelineCache::default(),
            rec: Mutex::new(Recorder::default()),
            arena,
            slot_stride,
            transfers: Transfers::default(),
            commands: Commands::default(),
            errors,
            lost,
            timeout: opts.timeout.max(Duration::from_secs(60)),
            profile: opts.profile,
            textures,
            _adapter: o.adapter,
            _instance: o.instance,
        }
    }

    /// The adapter's description.
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// Whether the adapter is a software rasteriser (llvmpipe).
    pub fn is_software(&self) -> bool {
        self.info.software
    }

    /// The matmul and conv2d kernels this context runs, resolved when it opened from
    /// [`GpuOptions::kernels`]: [`GpuKernels::Flat`] or [`GpuKernels::Tiled`], never `Auto`.
    pub fn kernels(&self) -> GpuKernels {
        self.info.kernels
    }

    /// The most bytes a uniform binding may cover (`max_uniform_buffer_binding_size`).
    pub(crate) fn max_uniform_bytes(&self) -> usize {
        self.limits.max_uniform_buffer_binding_size as usize
    }

    /// Whether a kernel should read `operands` through textures (bound at its shader's
    /// texture bindings): this context reads so and every one of them fits a texture.
    pub(crate) fn reads_through_textures(&self, operands: &[&GpuBuffer]) -> bool {
        self.textures.fit(operands)
    }

    /// How the kernels read their large operands here (resolved: never `Auto`).
    pub fn operands(&self) -> GpuOperands {
        self.info.operands
    }

    /// The lanes of a subgroup when the kernels share loads across one
    /// ([`GpuInfo::subgroup_size`]).
    pub fn subgroup_size(&self) -> Option<u32> {
        self.info.subgroup_size
    }

    /// Storage buffers one kernel may bind (`max_storage_buffers_per_shader_stage`).
    pub(crate) fn max_storage_buffers(&self) -> u32 {
        self.limits.max_storage_buffers_per_shader_stage
    }

    /// The largest tensor, in bytes, a kernel can bind (`max_storage_buffer_binding_size`).
    pub fn max_tensor_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Buffer-pool counters.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Frees the pool's cached (unused) buffers, and the textures operands were copied into
    /// (made again when a kernel next needs them).
    pub fn trim_pool(&self) {
        self.pool.trim();
        self.textures.trim();
    }

    /// Host↔device transfer counters.
    pub fn transfer_stats(&self) -> TransferStats {
        let t = &self.transfers;
        TransferStats {
            uploads: t.uploads.load(Ordering::Relaxed),
            upload_bytes: t.upload_bytes.load(Ordering::Relaxed),
            downloads: t.downloads.load(Ordering::Relaxed),
            download_bytes: t.download_bytes.load(Ordering::Relaxed),
        }
    }

    /// Kernel-launch and submission counters.
    pub fn command_stats(&self) -> CommandStats {
        let c = &self.commands;
        CommandStats {
            dispatches: c.dispatches.load(Ordering::Relaxed),
            submits: c.submits.load(Ordering::Relaxed),
        }
    }

    /// Kernel launches per entry point (`conv_fwd`, `matmul`, ...) since the context opened,
    /// sorted by name: where a step's dispatches go.
    pub fn dispatches_by_kernel(&self) -> Vec<(&'static str, u64)> {
        let rec = self.lock_rec();
        rec.by_kernel.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Wall time per entry point since the context opened, sorted by name; empty unless the
    /// context profiles ([`GpuOptions::profile`]). Where a step's GPU time goes: each launch
    /// is timed from its recording to the end of its own submission.
    pub fn kernel_times(&self) -> Vec<(&'static str, Duration)> {
        let rec = self.lock_rec();
        rec.time_by_kernel.iter().map(|(k, t)| (*k, *t)).collect()
    }

    /// Number of compute pipelines compiled so far (each once per kernel and specialisation).
    pub fn pipelines_compiled(&self) -> usize {
        self.pipelines.len()
    }

    /// Submits everything recorded and waits until the GPU has finished it.
    pub fn synchronize(&self) -> Result<()> {
        let idx = {
            let mut rec = self.lock_rec();
            self.flush_locked(&mut rec)?
        };
        self.wait(idx)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    fn lock_rec(&self) -> MutexGuard<'_, Recorder> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A [`KernelError::Gpu`] naming this adapter and `op`.
    pub(crate) fn fault(&self, op: impl Into<String>, reason: impl Into<String>) -> KernelError {
        KernelError::Gpu {
            adapter: self.info.name.clone(),
            op: op.into(),
            reason: reason.into(),
        }
    }

    /// The kernel recorded last (see [`Recorder::last_op`]).
    fn last_op(&self) -> &'static str {
        self.lock_rec().last_op
    }

    /// The device lost, or the first error the GPU reported outside a scope, as `op`'s.
    fn check_errors(&self, op: &str) -> Result<()> {
        if let Some(l) = self.lost.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Err(self.fault(op, format!("device lost: {l}")));
        }
        let mut errs = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if !errs.is_empty() {
            let first = errs.remove(0);
            errs.clear();
            return Err(self.fault(op, first));
        }
        Ok(())
    }

    /// A pooled buffer for `len` f32/u32 elements; [`KernelError::TooLarge`] past the binding limit.
    pub(crate) fn alloc(&self, op: &'static str, len: usize) -> Result<GpuBuffer> {
        let limit = self.max_tensor_bytes();
        let bytes = (len as u64).saturating_mul(4).max(4);
        if bytes > limit {
            return Err(KernelError::TooLarge {
                op,
                bytes,
                limit,
                adapter: self.info.name.clone(),
            });
        }
        self.check_errors(op)?;
        self.pool
            .acquire(len, bytes, self.id)
            .map_err(|reason| self.fault(op, reason))
    }

    fn encoder<'r>(&self, rec: &'r mut Recorder) -> &'r mut wgpu::CommandEncoder {
        rec.pass = None;
        rec.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }

    /// Copies host words into a new buffer, ordered after every op recorded so far.
    pub(crate) fn upload(&self, op: &'static str, data: &[u8], len: usize) -> Result<GpuBuffer> {
        let buf = self.alloc(op, len)?;
        if !data.is_empty() {
            let mut rec = self.lock_rec();
            if rec.encoder.is_some() {
                // Pending commands may still use this pooled buffer's previous contents, and
                // queue writes run before them: go through the encoder instead.
                use wgpu::util::DeviceExt;
                let staging = self
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("fovea-upload"),
                        contents: data,
                        usage: wgpu::BufferUsages::COPY_SRC,
                    });
                let enc = self.encoder(&mut rec);
                enc.copy_buffer_to_buffer(&staging, 0, buf.raw(), 0, data.len() as u64);
            } else {
                self.queue.write_buffer(buf.raw(), 0, data);
            }
        }
        self.transfers.uploads.fetch_add(1, Ordering::Relaxed);
        self.transfers
            .upload_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(buf)
    }

    /// A device-side copy of `src` (for copy-on-write of shared tensors).
    pub(crate) fn copy(&self, op: &'static str, src: &GpuBuffer) -> Result<GpuBuffer> {
        let dst = self.alloc(op, src.len)?;
        if src.len > 0 {
            let mut rec = self.lock_rec();
            let enc = self.encoder(&mut rec);
            enc.copy_buffer_to_buffer(src.raw(), 0, dst.raw(), 0, src.len as u64 * 4);
        }
        Ok(dst)
    }

    /// Reads a buffer back (submits what is pending and waits for it).
    pub(crate) fn read(&self, src: &GpuBuffer) -> Result<Vec<u8>> {
        Ok(self.read_many(&[src])?.pop().unwrap_or_default())
    }

    /// Reads several buffers back in one submission and one wait (a step's loss and correct
    /// count cost one round trip, not two). Returns each buffer's bytes, in order.
    pub(crate) fn read_many(&self, srcs: &[&GpuBuffer]) -> Result<Vec<Vec<u8>>> {
        let sizes: Vec<u64> = srcs.iter().map(|b| b.len as u64 * 4).collect();
        let bytes: u64 = sizes.iter().sum();
        if bytes == 0 {
            return Ok(vec![Vec::new(); srcs.len()]);
        }
        let (staging, class) = self
            .pool
            .staging(bytes)
            .map_err(|reason| self.fault("read-back", reason))?;
        let idx = {
            let mut rec = self.lock_rec();
            let enc = self.encoder(&mut rec);
            let mut offset = 0;
            for (src, &size) in srcs.iter().zip(&sizes) {
                if size > 0 {
                    enc.copy_buffer_to_buffer(src.raw(), 0, &staging, offset, size);
                }
                offset += size;
            }
            self.flush_locked(&mut rec)?
        };
        let slice = staging.slice(..bytes);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait(idx)?;
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(self.fault(
                    format!("read-back after {}", self.last_op()),
                    format!("read-back failed: {e}"),
                ));
            }
            Err(_) => {
                let op = format!("read-back after {}", self.last_op());
                self.check_errors(&op)?;
                return Err(self.fault(op, "read-back never completed"));
            }
        }
        let data = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| self.fault("read-back", format!("read-back mapping failed: {e}")))?;
            let mut out = Vec::with_capacity(srcs.len());
            let mut offset = 0;
            for &size in &sizes {
                out.push(view[offset as usize..(offset + size) as usize].to_vec());
                offset += size;
            }
            out
        };
        staging.unmap();
        self.pool.release_staging(class, staging);
        self.transfers.downloads.fetch_add(1, Ordering::Relaxed);
        self.transfers
            .download_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        Ok(data)
    }

    fn wait(&self, idx: Option<wgpu::SubmissionIndex>) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: idx,
                timeout: Some(self.timeout),
            })
            .map_err(|e| self.fault(self.last_op(), format!("waiting for the GPU: {e}")))?;
        self.check_errors(self.last_op())
    }

    /// Ends the open pass and submits the pending encoder (without waiting).
    fn flush_locked(&self, rec: &mut Recorder) -> Result<Option<wgpu::SubmissionIndex>> {
        rec.pass = None;
        let Some(enc) = rec.encoder.take() else {
            return Ok(None);
        };
        if !rec.params.is_empty() {
            self.queue.write_buffer(&self.arena, 0, &rec.params);
        }
        rec.params.clear();
        rec.slot = 0;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let idx = self.queue.submit([enc.finish()]);
        self.commands.submits.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(self.fault(rec.last_op, e.to_string()));
        }
        self.check_errors(rec.last_op)?;
        Ok(Some(idx))
    }

    /// Records one kernel launch into the pending pass.
    pub(crate) fn dispatch(&self, d: Dispatch<'_>) -> Result<()> {
        if d.invocations == 0 {
            return Ok(());
        }
        let groups = d.invocations.div_ceil(u64::from(d.workgroup));
        let max = u64::from(self.limits.max_compute_workgroups_per_dimension);
        let gx = groups.min(max);
        let gy = groups.div_ceil(gx);
        if gy > max {
            return Err(KernelError::TooLarge {
                op: d.entry,
                bytes: d.invocations * 4,
                limit: max * max * u64::from(d.workgroup) * 4,
                adapter: self.info.name.clone(),
            });
        }
        let pipe = self
            .pipelines
            .get(&self.device, d.shader, d.entry, &d.consts)
            .map_err(|reason| self.fault(d.entry, reason))?;
        // Profiling: everything before this launch finishes first, so only it is timed.
        let started = if self.profile {
            self.synchronize()?;
            Some(std::time::Instant::now())
        } else {
            None
        };
        let mut rec = self.lock_rec();
        rec.last_op = d.entry;
        *rec.by_kernel.entry(d.entry).or_default() += 1;
        if rec.slot >= MAX_PENDING {
            self.flush_locked(&mut rec)?;
        }
        let offset = rec.slot * self.slot_stride;
        rec.params.resize(offset as usize, 0);
        let mut block = [0u8; PARAM_BYTES as usize];
        for (i, w) in d.params.iter().take(16).enumerate() {
            block[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        rec.params.extend_from_slice(&block);
        rec.slot += 1;
        let mut entries = Vec::with_capacity(d.bindings.len() + 1);
        entries.push(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.arena,
                offset,
                size: std::num::NonZeroU64::new(PARAM_BYTES),
            }),
        });
        let max_uniform = self.limits.max_uniform_buffer_binding_size;
        let views: Vec<Option<wgpu::TextureView>> = d
            .bindings
            .iter()
            .enumerate()
            .map(|(slot, (binding, buf))| {
                d.shader.texture_bindings.contains(binding).then(|| {
                    let enc = self.encoder(&mut rec);
                    self.textures.copy_in(&self.device, enc, slot, buf)
                })
            })
            .collect();
        for ((binding, buf), view) in d.bindings.iter().zip(&views) {
            let resource = match view {
                Some(v) => wgpu::BindingResource::TextureView(v),
                None if d.shader.uniform_bindings.contains(binding) => {
                    buf.uniform_binding(max_uniform)
                }
                None => buf.binding(),
            };
            entries.push(wgpu::BindGroupEntry {
                binding: *binding,
                resource,
            });
        }
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipe.layout,
            entries: &entries,
        });
        if rec.pass.is_none() {
            let enc = self.encoder(&mut rec);
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor::default())
                .forget_lifetime();
            rec.pass = Some(pass);
        }
        let pass = rec.pass.as_mut().expect("pass opened above");
        pass.set_pipeline(&pipe.pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(gx as u32, gy as u32, 1);
        self.commands.dispatches.fetch_add(1, Ordering::Relaxed);
        if let Some(t0) = started {
            drop(rec);
            self.synchronize()?;
            *self.lock_rec().time_by_kernel.entry(d.entry).or_default() += t0.elapsed();
        }
        Ok(())
    }
}

/// The process-wide context behind [`crate::Device::gpu`] and [`crate::Device::auto`].
struct Shared {
    ctx: Option<Arc<GpuContext>>,
    hardware_error: Option<String>,
    any_error: Option<String>,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    ctx: None,
    hardware_error: None,
    any_error: None,
});

impl GpuContext {
    /// The process-wide context, opened on first use (failures are remembered, so a missing
    /// driver costs one probe). With `allow_software == false` a software adapter is refused.
    /// Its kernels are those of `FOVEA_GPU_KERNELS` (`auto`, `flat` or `tiled`; unset is
    /// `auto`), read when it opens; a value not understood is a [`KernelError::InvalidSpec`]
    /// naming the variable, and no adapter is probed. `FOVEA_GPU_PROFILE=1` makes it time
    /// every kernel ([`GpuOptions::profile`]); `FOVEA_GPU_SUBGROUPS=0` keeps its kernels from
    /// sharing loads across subgroups ([`GpuOptions::subgroups`]).
    pub fn shared(allow_software: bool) -> Result<Arc<GpuContext>> {
        let mut st = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &st.ctx {
            if allow_software || !c.is_software() {
                return Ok(Arc::clone(c));
            }
            return Err(KernelError::NoAdapter(format!(
                "only a software adapter is available: {} (ask for it with FOVEA_DEVICE=gpu)",
                c.info
            )));
        }
        let cached = if allow_software {
            &st.any_error
        } else {
            &st.hardware_error
        };
        if let Some(e) = cached {
            return Err(KernelError::NoAdapter(e.clone()));
        }
        let opts = GpuOptions {
            allow_software,
            kernels: GpuKernels::from_env()?,
            operands: GpuOperands::from_env()?,
            profile: std::env::var_os("FOVEA_GPU_PROFILE").is_some_and(|v| v == "1"),
            subgroups: std::env::var_os("FOVEA_GPU_SUBGROUPS").is_none_or(|v| v != "0"),
            ..GpuOptions::default()
        };
        match GpuContext::new(&opts) {
            Ok(c) => {
                let c = Arc::new(c);
                st.ctx = Some(Arc::clone(&c));
                Ok(c)
            }
            Err(e) => {
                let msg = match &e {
                    KernelError::NoAdapter(m) => m.clone(),
                    other => other.to_string(),
                };
                if allow_software {
                    st.any_error = Some(msg.clone());
                }
                st.hardware_error = Some(msg.clone());
                Err(KernelError::NoAdapter(msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::pipeline::Shader;

    static BROKEN: Shader = Shader {
        name: "broken.wgsl",
        source: "@compute @workgroup_size(64) fn main() { let x: u32 = 1.5; }",
        uniform_bindings: &[],
        texture_bindings: &[],
    };

    #[test]
    fn kernel_choices_parse_and_resolve() {
        for (k, n) in GpuKernels::ALL {
            assert_eq!(GpuKernels::parse(n).unwrap(), k);
            assert_eq!(
                GpuKernels::parse(&format!(" {} ", n.to_uppercase())).unwrap(),
                k
            );
            assert_eq!(k.to_string(), n);
        }
        assert_eq!(GpuKernels::parse("").unwrap(), GpuKernels::Auto);
        let e = GpuKernels::parse("fast").unwrap_err();
        assert!(matches!(e, KernelError::InvalidSpec { .. }), "{e:?}");
        assert!(
            e.to_string().contains("fast") && e.to_string().contains("tiled"),
            "{e}"
        );
        assert_eq!(GpuKernels::Auto.resolve(true), GpuKernels::Flat);
        assert_eq!(GpuKernels::Auto.resolve(false), GpuKernels::Tiled);
        assert_eq!(GpuKernels::Tiled.resolve(true), GpuKernels::Tiled);
        assert_eq!(GpuKernels::Flat.resolve(false), GpuKernels::Flat);
        assert_eq!(GpuKernels::Tiled.describe(), "tiled (workgroup memory)");
        assert_eq!(GpuKernels::Flat.describe(), "flat (barrier-free)");
    }

    #[test]
    fn a_shader_that_does_not_compile_is_an_error_naming_the_adapter_and_kernel() {
        let opts = GpuOptions {
            allow_software: true,
            ..GpuOptions::default()
        };
        let ctx = match GpuContext::new(&opts) {
            Ok(ctx) => ctx,
            Err(e) if std::env::var_os("FOVEA_REQUIRE_GPU").is_none() => {
                eprintln!("skipped: no GPU ({e})");
                return;
            }
            Err(e) => panic!("FOVEA_REQUIRE_GPU is set but no GPU opened: {e}"),
        };
        let err = ctx
            .dispatch(Dispatch {
                shader: &BROKEN,
                entry: "main",
                consts: Vec::new(),
                params: &[],
                bindings: &[],
                invocations: 1,
                workgroup: 64,
            })
            .expect_err("the shader does not compile");
        let KernelError::Gpu {
            adapter,
            op,
            reason,
        } = &err
        else {
            panic!("expected a GPU error, got {err:?}");
        };
        assert_eq!(adapter, &ctx.info().name);
        assert_eq!(op, "main");
        assert!(reason.contains("broken.wgsl"), "{reason}");
        assert!(err.is_device_fault());
        // The context is still usable afterwards.
        let buf = ctx
            .upload("upload", &[0u8; 16], 4)
            .expect("upload after the failure");
        assert_eq!(ctx.read(&buf).expect("read back"), vec![0u8; 16]);
    }
}
