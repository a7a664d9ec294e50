//! Host storage recycled through a process-wide pool, so a training step does not pay the
//! operating system for fresh zeroed pages on every op (glibc returns large blocks to the OS).
//!
//! Buffers come back to the pool when their last owner drops them and are handed out again,
//! uninitialised from the caller's point of view: every host kernel fully overwrites its output
//! (the contract of every op's host-kernel trait), so no zeroing is needed.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{LazyLock, Mutex};

/// Spare buffers kept per length; more than this are freed.
const SPARES_PER_LEN: usize = 16;
/// Total bytes the pool may hold before it frees instead of keeping.
const MAX_POOLED_BYTES: usize = 1 << 30;

#[derive(Default)]
struct Pool {
    spare: HashMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
}

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(|| Mutex::new(Pool::default()));

/// An f32 buffer that returns to the pool when dropped.
#[derive(Debug, Default)]
pub(crate) struct HostBuffer {
    data: Vec<f32>,
}

impl HostBuffer {
    /// A buffer of `len` elements with unspecified (but initialised) contents.
    pub(crate) fn scratch(len: usize) -> Self {
        if len > 0
            && let Ok(mut pool) = POOL.lock()
            && let Some(data) = pool.spare.get_mut(&len).and_then(Vec::pop)
        {
            pool.bytes -= len * 4;
            return Self { data };
        }
        Self {
            data: vec![0.0; len],
        }
    }
}

impl From<Vec<f32>> for HostBuffer {
    fn from(data: Vec<f32>) -> Self {
        Self { data }
    }
}

impl Clone for HostBuffer {
    fn clone(&self) -> Self {
        let mut b = Self::scratch(self.data.len());
        b.data.copy_from_slice(&self.data);
        b
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        let len = self.data.len();
        if len == 0 || self.data.capacity() != len {
            return;
        }
        if let Ok(mut pool) = POOL.lock()
            && pool.bytes + len * 4 <= MAX_POOLED_BYTES
        {
            let spares = pool.spare.entry(len).or_default();
            if spares.len() < SPARES_PER_LEN {
                spares.push(std::mem::take(&mut self.data));
                pool.bytes += len * 4;
            }
        }
    }
}

impl Deref for HostBuffer {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.data
    }
}

impl DerefMut for HostBuffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_buffers_are_reused_and_clones_copy() {
        let len = 12_345;
        let mut a = HostBuffer::scratch(len);
        a.fill(3.0);
        let ptr = a.as_ptr();
        a[0] = 7.0;
        let b = a.clone();
        assert_eq!((b[0], b[1]), (7.0, 3.0));
        drop(a);
        let c = HostBuffer::scratch(len);
        assert_eq!(c.as_ptr(), ptr, "the dropped allocation comes back");
    }
}
