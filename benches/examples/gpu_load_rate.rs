//! What one load costs a compute shader on this adapter, by kind of load: storage buffers (`f32`
//! and `vec4`, per-invocation and uniform addresses), a uniform buffer, sampled textures
//! (`r32float`, `rgba32float`), read-only storage textures (and a store to a write-only one),
//! and plain arithmetic for scale.
//!
//! Each probe runs `invocations × iterations` loads in one dispatch (an address that differs per
//! invocation unless the probe says otherwise), summed so nothing is optimised away, and prints
//! the best of several runs as nanoseconds per loaded `f32` component per invocation. Further
//! probes time workgroup memory, addresses that are the same across a workgroup or made so by a
//! subgroup broadcast, and multiply-adds alone for scale. On Mesa's
//! llvmpipe these differ by an order of magnitude between kinds and between CPUs, which decides
//! how a kernel should feed its arithmetic there (`docs/notes/llvmpipe-loads.md`).
//!
//! `cargo run --release -p fovea-benches --example gpu_load_rate [-- --software] [--runs N]`

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wgpu::util::DeviceExt;

/// Invocations per dispatch (1,024 workgroups of 64).
const INVOCATIONS: u32 = 65_536;
/// Loads per invocation.
const ITERATIONS: u32 = 256;
/// Elements in each source (a power of two: addresses are masked into it).
const ELEMENTS: u32 = 1 << 16;

/// How a probe's source is bound.
#[derive(Clone, Copy)]
enum Source {
    /// `array<f32>` in a read-only storage buffer.
    Storage,
    /// `array<vec4<f32>, 4096>` in a uniform buffer (64 KiB).
    Uniform,
    /// A sampled `r32float` or `rgba32float` texture of 256 × 256 texels.
    Texture(wgpu::TextureFormat),
    /// A read-only storage texture of 256 × 256 texels (no mip level to look up).
    StorageTexture(wgpu::TextureFormat),
    /// A write-only storage texture of 256 × 256 texels.
    WriteTexture(wgpu::TextureFormat),
}

/// One kind of access: its source binding and declarations, the WGSL statement run per
/// iteration (loading element `j` into `acc`, or storing `acc` at `j`), the output's element
/// type, and how many `f32` components (or multiply-adds) each iteration moves.
struct Probe {
    name: String,
    source: Source,
    decl: String,
    body: String,
    out: &'static str,
    index: &'static str,
    components: u32,
    /// Whether it needs `wgpu::Features::SUBGROUP` (skipped where the adapter lacks it).
    subgroups: bool,
}

impl Probe {
    /// A load probe with an `f32` output and no subgroup operations.
    fn load(
        name: &str,
        source: Source,
        decl: &str,
        body: &str,
        index: &'static str,
        components: u32,
    ) -> Self {
        Self {
            name: name.to_string(),
            source,
            decl: decl.to_string(),
            body: body.to_string(),
            out: "f32",
            index,
            components,
            subgroups: false,
        }
    }
}

/// Per invocation, a different address each iteration.
const DIVERGENT: &str = "(gid.x * 97u + i * 61u) & MASK";
/// The same address across a workgroup (not provably so to the compiler).
const PER_WORKGROUP: &str = "(wid.x * 13u + i * 61u) & MASK";
/// An address from the loop counter alone.
const PER_LOOP: &str = "(i * 61u) & MASK";

/// `n` multiply-adds per iteration into `n` accumulators carried across the loop, each fed by
/// its neighbour so none is dead: the arithmetic a register block does per loaded value.
fn multiply_adds(n: usize) -> Probe {
    let mut body = String::from("let x = f32(j);");
    for k in 0..n {
        body += &format!(" a[{k}] = fma(a[{k}], x, a[{}]);", (k + 1) % n);
    }
    body += " acc = acc + a[0];";
    Probe {
        name: format!("{n} multiply-adds into {n} accumulators"),
        source: Source::Storage,
        decl: format!("{STORAGE_F32}\nvar<private> a: array<f32, {n}>;"),
        body,
        out: "f32",
        index: DIVERGENT,
        components: n as u32,
        subgroups: false,
    }
}

const STORAGE_F32: &str = "@group(0) @binding(0) var<storage, read> src: array<f32>;";

fn probes() -> Vec<Probe> {
    let storage_vec4 = "@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;";
    let uniform = "@group(0) @binding(0) var<uniform> src: array<vec4<f32>, 4096>;";
    let uniform_load = "acc = acc + dot(src[j & 4095u], vec4<f32>(1.0));";
    let texture = "@group(0) @binding(0) var src: texture_2d<f32>;";
    let rgba = wgpu::TextureFormat::Rgba32Float;
    let workgroup_f32 = format!("{STORAGE_F32}\nvar<workgroup> wg: array<f32, 4096>;");
    let workgroup_vec4 = format!("{STORAGE_F32}\nvar<workgroup> wg: array<vec4<f32>, 1024>;");
    let mut list: Vec<Probe> = [8, 32, 128, 256].into_iter().map(multiply_adds).collect();
    list.extend([
        Probe::load(
            "arithmetic only (no load)",
            Source::Storage,
            STORAGE_F32,
            "acc = acc + f32(j);",
            DIVERGENT,
            1,
        ),
        Probe::load(
            "storage f32, address per invocation",
            Source::Storage,
            STORAGE_F32,
            "acc = acc + src[j];",
            DIVERGENT,
            1,
        ),
        Probe::load(
            "storage vec4, address per invocation",
            Source::Storage,
            storage_vec4,
            "acc = acc + dot(src[j >> 2u], vec4<f32>(1.0));",
            DIVERGENT,
            4,
        ),
        Probe::load(
            "storage f32, one address per workgroup",
            Source::Storage,
            STORAGE_F32,
            "acc = acc + src[j];",
            PER_WORKGROUP,
            1,
        ),
        Probe::load(
            "storage f32, address from the loop only",
            Source::Storage,
            STORAGE_F32,
            "acc = acc + src[j];",
            PER_LOOP,
            1,
        ),
        Probe::load(
            "uniform vec4, address per invocation",
            Source::Uniform,
            uniform,
            uniform_load,
            DIVERGENT,
            4,
        ),
        Probe::load(
            "uniform vec4, one address per workgroup",
            Source::Uniform,
            uniform,
            uniform_load,
            PER_WORKGROUP,
            4,
        ),
        Probe::load(
            "uniform vec4, address from the loop only",
            Source::Uniform,
            uniform,
            uniform_load,
            PER_LOOP,
            4,
        ),
        Probe::load(
            "workgroup f32, address per invocation",
            Source::Storage,
            &workgroup_f32,
            "acc = acc + wg[j & 4095u];",
            DIVERGENT,
            1,
        ),
        Probe::load(
            "workgroup vec4, address per invocation",
            Source::Storage,
            &workgroup_vec4,
            "acc = acc + dot(wg[j & 1023u], vec4<f32>(1.0));",
            DIVERGENT,
            4,
        ),
        Probe::load(
            "workgroup vec4, one address per workgroup",
            Source::Storage,
            &workgroup_vec4,
            "acc = acc + dot(wg[j & 1023u], vec4<f32>(1.0));",
            PER_WORKGROUP,
            4,
        ),
        Probe::load(
            "texture r32float, texel per invocation",
            Source::Texture(wgpu::TextureFormat::R32Float),
            texture,
            "acc = acc + textureLoad(src, vec2<u32>(j & 255u, j >> 8u), 0).x;",
            DIVERGENT,
            1,
        ),
        Probe::load(
            "texture rgba32float, texel per invocation",
            Source::Texture(rgba),
            texture,
            "acc = acc + dot(textureLoad(src, vec2<u32>(j & 255u, j >> 8u), 0), vec4<f32>(1.0));",
            DIVERGENT,
            4,
        ),
        Probe::load(
            "storage texture rgba32float, texel per invocation",
            Source::StorageTexture(rgba),
            "@group(0) @binding(0) var src: texture_storage_2d<rgba32float, read>;",
            "acc = acc + dot(textureLoad(src, vec2<u32>(j & 255u, j >> 8u)), vec4<f32>(1.0));",
            DIVERGENT,
            4,
        ),
        Probe::load(
            "storage texture rgba32float store, texel per invocation",
            Source::WriteTexture(rgba),
            "@group(0) @binding(0) var dst: texture_storage_2d<rgba32float, write>;",
            "acc = acc + 1.0; textureStore(dst, vec2<u32>(j & 255u, j >> 8u), vec4<f32>(acc));",
            DIVERGENT,
            4,
        ),
        Probe::load(
            "storage f32 store, address per invocation",
            Source::Storage,
            STORAGE_F32,
            "acc = acc + 1.0; out[j] = acc;",
            DIVERGENT,
            1,
        ),
        Probe {
            out: "vec4<f32>",
            ..Probe::load(
                "storage vec4 store, address per invocation",
                Source::Storage,
                STORAGE_F32,
                "acc = acc + 1.0; out[j >> 2u] = vec4<f32>(acc);",
                DIVERGENT,
                4,
            )
        },
    ]);
    // The address made uniform by a subgroup broadcast, which a SIMD compiler could turn into
    // one load for all lanes.
    for (name, source, decl, body, components) in [
        (
            "uniform vec4, subgroupBroadcastFirst address",
            Source::Uniform,
            uniform,
            "acc = acc + dot(src[subgroupBroadcastFirst(j & 4095u)], vec4<f32>(1.0));",
            4,
        ),
        (
            "storage f32, subgroupBroadcastFirst address",
            Source::Storage,
            STORAGE_F32,
            "acc = acc + src[subgroupBroadcastFirst(j)];",
            1,
        ),
        (
            "texture rgba32float, subgroupBroadcastFirst texel",
            Source::Texture(rgba),
            texture,
            "let k = subgroupBroadcastFirst(j); acc = acc + dot(textureLoad(src, vec2<u32>(k & 255u, k >> 8u), 0), vec4<f32>(1.0));",
            4,
        ),
    ] {
        list.push(Probe {
            subgroups: true,
            ..Probe::load(name, source, decl, body, PER_WORKGROUP, components)
        });
    }
    list
}

fn shader(p: &Probe) -> String {
    format!(
        "{decl}
const MASK: u32 = {mask}u;
@group(0) @binding(1) var<storage, read_write> out: array<{out}>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {{
    var acc = 0.0;
    for (var i = 0u; i < {iters}u; i = i + 1u) {{
        let j = {index};
        {body}
    }}
    out[gid.x & MASK] = {out}(acc);
}}",
        mask = ELEMENTS - 1,
        decl = p.decl,
        iters = ITERATIONS,
        index = p.index,
        body = p.body,
        out = p.out,
    )
}

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
}

fn open(software: bool) -> Result<(Gpu, String)> {
    let desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let adapter = adapters
        .into_iter()
        .find(|a| software || a.get_info().device_type != wgpu::DeviceType::Cpu)
        .context("no adapter (pass --software to allow llvmpipe)")?;
    let info = adapter.get_info();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("gpu_load_rate"),
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        required_limits: adapter.limits(),
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))?;
    Ok((
        Gpu { device, queue },
        format!("{} ({:?}, {})", info.name, info.backend, info.driver_info),
    ))
}

fn source_binding(gpu: &Gpu, source: Source) -> (wgpu::BindingType, wgpu::BindingResource<'_>) {
    // The values are small integers' fractions: sums stay finite.
    let values: Vec<f32> = (0..ELEMENTS * 4).map(|i| (i % 7) as f32 * 0.125).collect();
    let bytes: &[u8] = bytemuck_cast(&values);
    match source {
        Source::Storage | Source::Uniform => {
            let (usage, ty, len) = match source {
                Source::Storage => (
                    wgpu::BufferUsages::STORAGE,
                    wgpu::BufferBindingType::Storage { read_only: true },
                    bytes.len(),
                ),
                _ => (
                    wgpu::BufferUsages::UNIFORM,
                    wgpu::BufferBindingType::Uniform,
                    65_536,
                ),
            };
            let buffer = gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: None,
                    contents: &bytes[..len],
                    usage,
                });
            let binding = wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            };
            (
                binding,
                wgpu::BindingResource::Buffer(leak(buffer).as_entire_buffer_binding()),
            )
        }
        Source::Texture(format) | Source::StorageTexture(format) | Source::WriteTexture(format) => {
            let storage = !matches!(source, Source::Texture(_));
            let texel = format.block_copy_size(None).unwrap_or(4) as usize;
            let texture = gpu.device.create_texture_with_data(
                &gpu.queue,
                &wgpu::TextureDescriptor {
                    label: None,
                    size: wgpu::Extent3d {
                        width: 256,
                        height: ELEMENTS / 256,
                        depth_or_array_layers: 1,
                    },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format,
                    usage: if storage {
                        wgpu::TextureUsages::STORAGE_BINDING
                    } else {
                        wgpu::TextureUsages::TEXTURE_BINDING
                    },
                    view_formats: &[],
                },
                wgpu::util::TextureDataOrder::LayerMajor,
                &bytes[..ELEMENTS as usize * texel],
            );
            let view = leak(texture.create_view(&wgpu::TextureViewDescriptor::default()));
            let binding = if storage {
                wgpu::BindingType::StorageTexture {
                    access: if matches!(source, Source::WriteTexture(_)) {
                        wgpu::StorageTextureAccess::WriteOnly
                    } else {
                        wgpu::StorageTextureAccess::ReadOnly
                    },
                    format,
                    view_dimension: wgpu::TextureViewDimension::D2,
                }
            } else {
                wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                }
            };
            (binding, wgpu::BindingResource::TextureView(view))
        }
    }
}

/// The probe's resources live as long as the process (a handful, made once).
fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

fn bytemuck_cast(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and every byte pattern of u8 is valid; the length is exact.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

/// Best time of `runs` dispatches of the probe, each submitted and waited for alone.
fn time_probe(gpu: &Gpu, p: &Probe, runs: usize) -> Result<Duration> {
    let (binding, resource) = source_binding(gpu, p.source);
    let out = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: u64::from(ELEMENTS) * 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let layout = gpu
        .device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: None,
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: binding,
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
    let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource,
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
        ],
    });
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = gpu
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&p.name),
            source: wgpu::ShaderSource::Wgsl(shader(p).into()),
        });
    let pipeline_layout = gpu
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
    let pipeline = gpu
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&p.name),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
    if let Some(e) = pollster::block_on(scope.pop()) {
        bail!("{}: {e}", p.name);
    }
    let mut best = Duration::MAX;
    for _ in 0..runs + 1 {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(INVOCATIONS / 64, 1, 1);
        }
        let start = Instant::now();
        let idx = gpu.queue.submit([enc.finish()]);
        gpu.device.poll(wgpu::PollType::Wait {
            submission_index: Some(idx),
            timeout: Some(Duration::from_secs(60)),
        })?;
        best = best.min(start.elapsed());
    }
    Ok(best)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let software = args.iter().any(|a| a == "--software");
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).context("--runs needs a number")?.parse()?,
        None => 5,
    };
    let (gpu, adapter) = open(software)?;
    println!("adapter: {adapter}");
    println!(
        "{INVOCATIONS} invocations x {ITERATIONS} loads per dispatch, best of {runs} (the first run, which compiles, is not counted)"
    );
    let loads = f64::from(INVOCATIONS) * f64::from(ITERATIONS);
    let subgroups = gpu.device.features().contains(wgpu::Features::SUBGROUP);
    for p in probes() {
        if p.subgroups && !subgroups {
            println!(
                "{:<50} skipped: the adapter has no subgroup operations",
                p.name
            );
            continue;
        }
        let t = time_probe(&gpu, &p, runs)?;
        let per_load = t.as_secs_f64() * 1e9 / loads;
        println!(
            "{:<50} {:>8.2} ms  {:>6.3} ns per iteration  {:>6.3} ns per component",
            p.name,
            t.as_secs_f64() * 1e3,
            per_load,
            per_load / f64::from(p.components)
        );
    }
    Ok(())
}
