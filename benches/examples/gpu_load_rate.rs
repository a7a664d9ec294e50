//! What one load costs a compute shader on this adapter, by kind of load: storage buffers (`f32`
//! and `vec4`, per-invocation and uniform addresses), a uniform buffer, sampled textures
//! (`r32float`, `rgba32float`), and plain arithmetic for scale.
//!
//! Each probe runs `invocations × iterations` loads in one dispatch (an address that differs per
//! invocation unless the probe says otherwise), summed so nothing is optimised away, and prints
//! the best of several runs as nanoseconds per loaded `f32` component per invocation. On Mesa's
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
}

/// One kind of access: its source binding, the WGSL statement run per iteration (loading
/// element `j` into `acc`, or storing `acc` at `j`), the output's element type, and how many
/// `f32` components each access moves.
struct Probe {
    name: &'static str,
    source: Source,
    decl: &'static str,
    body: &'static str,
    out: &'static str,
    index: &'static str,
    components: u32,
}

fn probes() -> Vec<Probe> {
    let divergent = "(gid.x * 97u + i * 61u) & MASK";
    let uniform = "(wid.x * 13u + i * 61u) & MASK";
    let storage_f32 = "@group(0) @binding(0) var<storage, read> src: array<f32>;";
    let storage_vec4 = "@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;";
    let texture = "@group(0) @binding(0) var src: texture_2d<f32>;";
    vec![
        Probe {
            name: "arithmetic only (no load)",
            source: Source::Storage,
            decl: storage_f32,
            body: "acc = acc + f32(j);",
            out: "f32",
            index: divergent,
            components: 1,
        },
        Probe {
            name: "storage f32, address per invocation",
            source: Source::Storage,
            decl: storage_f32,
            body: "acc = acc + src[j];",
            out: "f32",
            index: divergent,
            components: 1,
        },
        Probe {
            name: "storage vec4, address per invocation",
            source: Source::Storage,
            decl: storage_vec4,
            body: "acc = acc + dot(src[j >> 2u], vec4<f32>(1.0));",
            out: "f32",
            index: divergent,
            components: 4,
        },
        Probe {
            name: "storage f32, one address per workgroup",
            source: Source::Storage,
            decl: storage_f32,
            body: "acc = acc + src[j];",
            out: "f32",
            index: uniform,
            components: 1,
        },
        Probe {
            name: "uniform vec4, address per invocation",
            source: Source::Uniform,
            decl: "@group(0) @binding(0) var<uniform> src: array<vec4<f32>, 4096>;",
            body: "acc = acc + dot(src[j & 4095u], vec4<f32>(1.0));",
            out: "f32",
            index: divergent,
            components: 4,
        },
        Probe {
            name: "texture r32float, texel per invocation",
            source: Source::Texture(wgpu::TextureFormat::R32Float),
            decl: texture,
            body: "acc = acc + textureLoad(src, vec2<u32>(j & 255u, j >> 8u), 0).x;",
            out: "f32",
            index: divergent,
            components: 1,
        },
        Probe {
            name: "texture rgba32float, texel per invocation",
            source: Source::Texture(wgpu::TextureFormat::Rgba32Float),
            decl: texture,
            body: "acc = acc + dot(textureLoad(src, vec2<u32>(j & 255u, j >> 8u), 0), vec4<f32>(1.0));",
            out: "f32",
            index: divergent,
            components: 4,
        },
        Probe {
            name: "storage f32 store, address per invocation",
            source: Source::Storage,
            decl: storage_f32,
            body: "acc = acc + 1.0; out[j] = acc;",
            out: "f32",
            index: divergent,
            components: 1,
        },
        Probe {
            name: "storage vec4 store, address per invocation",
            source: Source::Storage,
            decl: storage_f32,
            body: "acc = acc + 1.0; out[j >> 2u] = vec4<f32>(acc);",
            out: "vec4<f32>",
            index: divergent,
            components: 4,
        },
    ]
}

fn shader(p: &Probe) -> String {
    format!(
        "const MASK: u32 = {mask}u;
{decl}
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
        required_features: wgpu::Features::empty(),
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
        Source::Texture(format) => {
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
                    usage: wgpu::TextureUsages::TEXTURE_BINDING,
                    view_formats: &[],
                },
                wgpu::util::TextureDataOrder::LayerMajor,
                &bytes[..ELEMENTS as usize * texel],
            );
            let view = leak(texture.create_view(&wgpu::TextureViewDescriptor::default()));
            let binding = wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: false },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
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
            label: Some(p.name),
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
            label: Some(p.name),
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
    for p in probes() {
        let t = time_probe(&gpu, &p, runs)?;
        let per_load = t.as_secs_f64() * 1e9 / loads;
        println!(
            "{:<44} {:>8.2} ms  {:>6.3} ns per load  {:>6.3} ns per component",
            p.name,
            t.as_secs_f64() * 1e3,
            per_load,
            per_load / f64::from(p.components)
        );
    }
    Ok(())
}
