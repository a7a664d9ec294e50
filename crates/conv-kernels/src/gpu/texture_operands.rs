//! Read-only kernel operands through read-only storage textures, for adapters whose
//! storage-buffer loads are far dearer than their texel loads.
//!
//! Mesa 22.3's llvmpipe loads a storage buffer in a loop over the SIMD lanes, one component at
//! a time; on some CPUs (AMD Zen 3) that costs about 20 cycles per component and lane. A texel
//! of a read-only `rgba32float` storage texture (`texture_storage_2d<rgba32float, read>`)
//! costs a fifth of one `f32` storage load there, and less than half of the same texel fetched
//! from a sampled `texture_2d` (which looks its mip level up per lane): `cargo run --release
//! -p fovea-benches --example gpu_load_rate -- --software`. A kernel that reads an operand this
//! way gets it copied by the encoder (a memcpy on a software adapter) into an `rgba32float`
//! texture [`TEXELS_PER_ROW`] texels wide: `vec4` `i` of the buffer is texel
//! `(i % TEXELS_PER_ROW, i / TEXELS_PER_ROW)`.
//!
//! A context chooses once whether its kernels read this way ([`GpuOperands`]); a kernel asks
//! [`TextureOperands::fit`] for its operands and binds them at its shader's texture bindings.
//! Either way a kernel loads the same values and computes the same results, bit for bit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pool::GpuBuffer;
use crate::error::{KernelError, Result};
use crate::named_choice;

/// How the kernels read their large read-only operands: the flat matmul and conv2d kernels
/// ([`super::GpuKernels::Flat`]) and pooling's vector kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GpuOperands {
    /// Decided when the context opens: on a software adapter, a probe of a few milliseconds
    /// times both kinds of load and keeps the faster; storage buffers on a hardware adapter.
    /// [`super::GpuContext::operands`] never returns `Auto`.
    #[default]
    Auto,
    /// Storage-buffer loads (`vec4`s where the shapes allow).
    Storage,
    /// Texel loads from read-only `rgba32float` storage-texture copies of the operands.
    Textures,
}

impl GpuOperands {
    /// Every choice with its name, in the order help texts list them.
    pub const ALL: [(GpuOperands, &'static str); 3] = [
        (GpuOperands::Auto, "auto"),
        (GpuOperands::Storage, "storage"),
        (GpuOperands::Textures, "textures"),
    ];

    /// The name [`GpuOperands::parse`] accepts for this choice.
    pub fn name(self) -> &'static str {
        named_choice::name_of(&Self::ALL, self, "auto")
    }

    /// Parses `auto`, `storage` or `textures` (case and surrounding blanks ignored; the empty
    /// string is `auto`).
    pub fn parse(text: &str) -> Result<GpuOperands> {
        named_choice::parse(&Self::ALL, "gpu operands", "GPU operands", text)
    }

    /// The choice named by the environment variable `FOVEA_GPU_OPERANDS`: `Auto` when it is
    /// unset or blank, an error naming the variable when it is not understood.
    pub fn from_env() -> Result<GpuOperands> {
        named_choice::from_env(&Self::ALL, "gpu operands", "FOVEA_GPU_OPERANDS")
    }
}

impl std::fmt::Display for GpuOperands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GpuOperands {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Texels per texture row (16 bytes each): the row pitch is 64 KiB, a multiple of the copy
/// alignment, and the shaders index with a shift.
pub(crate) const TEXELS_PER_ROW: u32 = 4096;

/// A shader's constants saying whether it reads through textures: `TEX` and `STO` (the 0/1
/// unroll flags of the two ways, exactly one of them 1) and `TEXW` ([`TEXELS_PER_ROW`]).
pub(crate) fn read_consts(textures: bool) -> [(&'static str, usize); 3] {
    [
        ("TEX", usize::from(textures)),
        ("STO", usize::from(!textures)),
        ("TEXW", TEXELS_PER_ROW as usize),
    ]
}

/// Bytes of one `rgba32float` texel.
const TEXEL_BYTES: u64 = 16;

/// How the textures of a context are kept: one per (binding slot of a launch, height), reused
/// by every later launch (the queue runs copies and launches in the order they were recorded,
/// so a launch reads what its own copy wrote).
pub(crate) struct TextureOperands {
    enabled: bool,
    max_rows: u32,
    textures: Mutex<HashMap<(usize, u32), (wgpu::Texture, wgpu::TextureView)>>,
}

impl TextureOperands {
    /// Texture reads on for [`GpuOperands::Textures`] (resolved by [`resolve`], which keeps
    /// it only where the adapter's textures hold a row).
    pub(crate) fn new(operands: GpuOperands, limits: &wgpu::Limits) -> Self {
        Self {
            enabled: operands == GpuOperands::Textures,
            max_rows: limits.max_texture_dimension_2d,
            textures: Mutex::default(),
        }
    }

    /// Whether every buffer of `operands` can be read through a texture: texture reads are on
    /// and each fits the adapter's texture height.
    pub(crate) fn fit(&self, operands: &[&GpuBuffer]) -> bool {
        self.enabled
            && operands
                .iter()
                .all(|b| b.binds_whole_vec4s() && rows(b) <= self.max_rows)
    }

    /// Drops the textures kept for reuse.
    pub(crate) fn trim(&self) {
        self.textures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Records the copy of `buf` into the texture of binding slot `slot` on `enc` (outside any
    /// pass) and returns its view (made once with the texture) to bind.
    pub(crate) fn copy_in(
        &self,
        device: &wgpu::Device,
        enc: &mut wgpu::CommandEncoder,
        slot: usize,
        buf: &GpuBuffer,
    ) -> wgpu::TextureView {
        let height = rows(buf).max(1);
        let (texture, view) = {
            let mut map = self.textures.lock().unwrap_or_else(|e| e.into_inner());
            map.entry((slot, height))
                .or_insert_with(|| {
                    let texture = device.create_texture(&wgpu::TextureDescriptor {
                        label: Some("fovea-operand"),
                        size: wgpu::Extent3d {
                            width: TEXELS_PER_ROW,
                            height,
                            depth_or_array_layers: 1,
                        },
                        mip_level_count: 1,
                        sample_count: 1,
                        dimension: wgpu::TextureDimension::D2,
                        format: wgpu::TextureFormat::Rgba32Float,
                        usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
                        view_formats: &[],
                    });
                    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
                    (texture, view)
                })
                .clone()
        };
        let texels = texels(buf);
        let full = (texels / u64::from(TEXELS_PER_ROW)) as u32;
        let rest = (texels % u64::from(TEXELS_PER_ROW)) as u32;
        let row_bytes = u64::from(TEXELS_PER_ROW) * TEXEL_BYTES;
        let copy = |enc: &mut wgpu::CommandEncoder, first_row: u32, width: u32, height: u32| {
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: buf.raw(),
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: u64::from(first_row) * row_bytes,
                        bytes_per_row: Some(row_bytes as u32),
                        rows_per_image: Some(height),
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: first_row,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
            );
        };
        if full > 0 {
            copy(enc, 0, TEXELS_PER_ROW, full);
        }
        if rest > 0 {
            copy(enc, full, rest, 1);
        }
        view
    }
}

/// Whole texels holding the buffer's values (the last may reach past them, inside the
/// allocation: [`TextureOperands::fit`] asks for buffers bound as whole vec4s).
fn texels(buf: &GpuBuffer) -> u64 {
    buf.bytes.div_ceil(TEXEL_BYTES)
}

/// Texture rows holding the buffer.
fn rows(buf: &GpuBuffer) -> u32 {
    u32::try_from(texels(buf).div_ceil(u64::from(TEXELS_PER_ROW))).unwrap_or(u32::MAX)
}

/// Whether the adapter's textures hold a row of [`TEXELS_PER_ROW`] texels.
fn fits_adapter(limits: &wgpu::Limits) -> bool {
    limits.max_texture_dimension_2d >= TEXELS_PER_ROW
}

/// The probe's kernels: `storage_loads` loads whole `vec4`s from a storage buffer,
/// `texture_loads` the same texels from a read-only storage texture, each invocation at its own
/// addresses; both sum into `out`.
const PROBE_SHADER: &str = "
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var srct: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn storage_loads(@builtin(global_invocation_id) gid: vec3<u32>) {
    var acc = vec4<f32>();
    for (var i = 0u; i < 64u; i++) {
        acc += src[(gid.x * 97u + i * 61u) & 4095u];
    }
    out[gid.x] = acc;
}

@compute @workgroup_size(64)
fn texture_loads(@builtin(global_invocation_id) gid: vec3<u32>) {
    var acc = vec4<f32>();
    for (var i = 0u; i < 64u; i++) {
        let j = (gid.x * 97u + i * 61u) & 4095u;
        acc += textureLoad(srct, vec2<u32>(j & 63u, j >> 6u));
    }
    out[gid.x] = acc;
}
";

/// Invocations of one probe launch.
const PROBE_INVOCATIONS: u32 = 4096;

/// Resolves `Auto` for an adapter: storage on hardware adapters, and on software ones the
/// faster of the two kinds of load by a probe (each kind launched three times, alternating, the
/// best of each compared; storage if the probe fails or the textures do not fit). An explicit
/// choice stays, textures only where they fit the adapter.
pub(crate) fn resolve(
    choice: GpuOperands,
    software: bool,
    device: &wgpu::Device,
    queue: &wgpu::Queue,
) -> GpuOperands {
    match choice {
        GpuOperands::Auto if software && fits_adapter(&device.limits()) => {
            match probe(device, queue) {
                Some((storage, texture)) if texture < storage => GpuOperands::Textures,
                _ => GpuOperands::Storage,
            }
        }
        GpuOperands::Auto => GpuOperands::Storage,
        GpuOperands::Textures if !fits_adapter(&device.limits()) => GpuOperands::Storage,
        other => other,
    }
}

/// The best times of the storage and the texture probe launches, or `None` when a launch
/// failed (an error scope caught it, or the device did not answer).
fn probe(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<(Duration, Duration)> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("fovea-operand-probe"),
        source: wgpu::ShaderSource::Wgsl(PROBE_SHADER.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[
            layout_entry(0, storage_binding(true)),
            layout_entry(1, texture_binding()),
            layout_entry(2, storage_binding(false)),
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = |entry: &str| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("fovea-operand-probe"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let (storage, texture) = (pipeline("storage_loads"), pipeline("texture_loads"));
    let buffer = |usage: wgpu::BufferUsages| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fovea-operand-probe"),
            size: u64::from(PROBE_INVOCATIONS) * TEXEL_BYTES,
            usage,
            mapped_at_creation: false,
        })
    };
    let src = buffer(wgpu::BufferUsages::STORAGE);
    let out = buffer(wgpu::BufferUsages::STORAGE);
    let srct = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("fovea-operand-probe"),
        size: wgpu::Extent3d {
            width: 64,
            height: 64,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::STORAGE_BINDING,
        view_formats: &[],
    });
    let view = srct.create_view(&wgpu::TextureViewDescriptor::default());
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: src.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::TextureView(&view),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: out.as_entire_binding(),
            },
        ],
    });
    if pollster::block_on(scope.pop()).is_some() {
        return None;
    }
    let time = |pipeline: &wgpu::ComputePipeline| -> Option<Duration> {
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(PROBE_INVOCATIONS / 64, 1, 1);
        }
        let start = Instant::now();
        let idx = queue.submit([enc.finish()]);
        device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(idx),
                timeout: Some(Duration::from_secs(10)),
            })
            .ok()?;
        Some(start.elapsed())
    };
    let mut best = (Duration::MAX, Duration::MAX);
    // The first round also warms both pipelines up; it counts like the others.
    for _ in 0..3 {
        best.0 = best.0.min(time(&storage)?);
        best.1 = best.1.min(time(&texture)?);
    }
    Some(best)
}

fn layout_entry(binding: u32, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty,
        count: None,
    }
}

/// How the kernels declare an operand texture: `texture_storage_2d<rgba32float, read>`.
fn texture_binding() -> wgpu::BindingType {
    wgpu::BindingType::StorageTexture {
        access: wgpu::StorageTextureAccess::ReadOnly,
        format: wgpu::TextureFormat::Rgba32Float,
        view_dimension: wgpu::TextureViewDimension::D2,
    }
}

fn storage_binding(read_only: bool) -> wgpu::BindingType {
    wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Storage { read_only },
        has_dynamic_offset: false,
        min_binding_size: None,
    }
}
