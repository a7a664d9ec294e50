//! Compute pipelines compiled once per (shader, entry point, specialisation) for the life of the
//! context.

use super::shader_source;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A WGSL source file of one kernel family.
pub(crate) struct Shader {
    /// File name, for cache keys and error messages.
    pub(crate) name: &'static str,
    /// The WGSL text; specialisation constants are prepended to it.
    pub(crate) source: &'static str,
    /// Bindings declared `var<uniform>` (besides the parameter block, binding 0): bound as
    /// uniform buffers, the rest as storage buffers.
    pub(crate) uniform_bindings: &'static [u32],
    /// Bindings declared `texture_storage_2d<rgba32float, read>`: the buffer given for one is
    /// copied into an `rgba32float` texture and the texture bound
    /// ([`super::texture_operands`]).
    pub(crate) texture_bindings: &'static [u32],
}

/// A compiled pipeline and the bind group layout derived from its entry point.
pub(crate) struct Pipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

type Key = (&'static str, &'static str, String);

/// The process-lifetime cache of compiled pipelines.
#[derive(Default)]
pub(crate) struct PipelineCache {
    map: Mutex<HashMap<Key, Arc<Pipeline>>>,
}

impl PipelineCache {
    /// Number of pipelines compiled so far.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The pipeline for `shader::entry` specialised by `consts` (the source built by
    /// [`shader_source`]), compiled on first use; compile errors come back as the compiler's
    /// message (the caller names the adapter and op).
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        shader: &Shader,
        entry: &'static str,
        consts: &[(&'static str, usize)],
    ) -> Result<Arc<Pipeline>, String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let decls = shader_source::const_decls(consts);
        let key = (shader.name, entry, decls.clone());
        if let Some(p) = map.get(&key) {
            return Ok(Arc::clone(p));
        }
        let entry_only = shader_source::only_entry_point(shader.source, entry);
        let body = shader_source::expand_unrolls(&entry_only, consts)
            .map_err(|e| format!("{}: {e}", shader.name))?;
        let source = format!("{decls}\n{body}");
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(format!(
                "compiling {}::{entry} ({}): {e}",
                shader.name,
                decls.replace('\n', " ")
            ));
        }
        let layout = pipeline.get_bind_group_layout(0);
        let p = Arc::new(Pipeline { pipeline, layout });
        map.insert(key, Arc::clone(&p));
        Ok(p)
    }
}
