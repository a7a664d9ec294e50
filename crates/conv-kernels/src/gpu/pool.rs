//! A pool of GPU storage buffers: tensors take a buffer of a size class and give it back when
//! their last handle drops, so a training loop stops allocating after its first step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counters of a [`crate::GpuContext`]'s buffer pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes of every storage buffer the pool has created and not released (in use + cached).
    pub bytes_allocated: u64,
    /// Bytes of the buffers currently held by tensors.
    pub bytes_in_use: u64,
    /// Buffers currently held by tensors.
    pub live_buffers: u64,
    /// Buffers waiting in the pool for reuse.
    pub cached_buffers: u64,
    /// Requests served from the pool.
    pub hits: u64,
    /// Requests that created a new buffer.
    pub misses: u64,
}

#[derive(Default)]
struct PoolState {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    staging: HashMap<u64, Vec<wgpu::Buffer>>,
    stats: PoolStats,
}

/// The pool shared by a context and every buffer it handed out.
pub(crate) struct BufferPool {
    device: wgpu::Device,
    max_buffer: u64,
    state: Mutex<PoolState>,
}

/// Rounds a request up to its size class: at least 256 bytes, then to a 1/16 step of the next
/// power of two,
/// so reuse across slightly different sizes wastes at most 12.5 %.
fn size_class(bytes: u64) -> u64 {
    if bytes <= 256 {
        return 256;
    }
    let step = bytes.next_power_of_two() / 16;
    bytes.div_ceil(step) * step
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device, max_buffer: u64) -> Self {
        Self {
            device,
            max_buffer,
            state: Mutex::new(PoolState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    /// Drops every cached (unused) buffer.
    pub(crate) fn trim(&self) {
        let mut st = self.lock();
        let freed: u64 = st
            .free
            .iter()
            .map(|(class, v)| class * v.len() as u64)
            .sum();
        st.free.clear();
        st.staging.clear();
        st.stats.bytes_allocated -= freed;
        st.stats.cached_buffers = 0;
    }

    fn create(&self, size: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer, String> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fovea-tensor"),
            size,
            usage,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(format!(
                "out of memory allocating a {size}-byte buffer: {e}"
            ));
        }
        Ok(buf)
    }

    /// A storage buffer of at least `bytes` bytes (`len` elements of 4 bytes).
    pub(crate) fn acquire(
        self: &Arc<Self>,
        len: usize,
        bytes: u64,
        ctx_id: u64,
    ) -> Result<GpuBuffer, String> {
        let class = size_class(bytes).min(self.max_buffer.max(bytes));
        let reused = {
            let mut st = self.lock();
            let b = st.free.get_mut(&class).and_then(|v| v.pop());
            if b.is_some() {
                st.stats.hits += 1;
                st.stats.cached_buffers -= 1;
            } else {
                st.stats.misses += 1;
            }
            b
        };
        let buffer = match reused {
            Some(b) => b,
            None => {
                // Uniform too, so that small read-only operands read alike by a whole
                // workgroup (conv weights) can be bound as uniform buffers.
                let usage = wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::UNIFORM
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST;
                let b = self.create(class, usage)?;
                self.lock().stats.bytes_allocated += class;
                b
            }
        };
        let mut st = self.lock();
        st.stats.live_buffers += 1;
        st.stats.bytes_in_use += class;
        Ok(GpuBuffer {
            buffer: Some(buffer),
            class,
            len,
            bytes,
            pool: Arc::clone(self),
            ctx_id,
        })
    }

    fn release(&self, class: u64, buffer: wgpu::Buffer) {
        let mut st = self.lock();
        st.stats.live_buffers -= 1;
        st.stats.bytes_in_use -= class;
        st.stats.cached_buffers += 1;
        st.free.entry(class).or_default().push(buffer);
    }

    /// A mappable read-back buffer of at least `bytes` bytes, and its size class.
    pub(crate) fn staging(&self, bytes: u64) -> Result<(wgpu::Buffer, u64), String> {
        let class = size_class(bytes);
        if let Some(b) = self.lock().staging.get_mut(&class).and_then(|v| v.pop()) {
            return Ok((b, class));
        }
        let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        Ok((self.create(class, usage)?, class))
    }

    /// Returns a read-back buffer (unmapped) for reuse.
    pub(crate) fn release_staging(&self, class: u64, buffer: wgpu::Buffer) {
        self.lock().staging.entry(class).or_default().push(buffer);
    }
}

/// A pooled storage buffer holding one tensor; goes back to the pool when dropped.
pub(crate) struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    /// Elements held.
    pub(crate) len: usize,
    /// Bytes in use (the binding size): `len * 4`, at least 4.
    pub(crate) bytes: u64,
    pool: Arc<BufferPool>,
    /// The context the buffer belongs to.
    pub(crate) ctx_id: u64,
}

impl GpuBuffer {
    /// The wgpu buffer.
    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buffer
            .as_ref()
            .expect("a GpuBuffer holds its buffer until dropped")
    }

    /// Whether [`Self::binding`] covers the last elements with whole vec4s.
    pub(crate) fn binds_whole_vec4s(&self) -> bool {
        self.bytes.next_multiple_of(16) <= self.class
    }

    /// The whole used range, rounded up to whole vec4s where the size class allows (it does
    /// below the largest buffer), as a binding resource: a kernel reading the buffer as vec4s
    /// reaches its last elements; what lies past them is never used as data.
    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.raw(),
            offset: 0,
            size: std::num::NonZeroU64::new(self.bytes.next_multiple_of(16).min(self.class)),
        })
    }

    /// A uniform-buffer binding: the allocation from offset 0, at most `max` bytes (the
    /// adapter's uniform binding limit). Size classes are multiples of 16 bytes, so it covers
    /// the used range rounded up to a uniform array's 16-byte stride whenever that fits `max`.
    pub(crate) fn uniform_binding(&self, max: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.raw(),
            offset: 0,
            size: std::num::NonZeroU64::new(self.class.min(max)),
        })
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.release(self.class, b);
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuBuffer({} elements, context {})",
            self.len, self.ctx_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_round_up_by_at_most_an_eighth() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 288);
        for b in [300u64, 1000, 4097, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(b);
            assert!(c >= b && (c - b) * 8 <= c, "{b} -> {c}");
        }
    }
}
