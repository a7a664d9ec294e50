//! A small pool of reusable f32 buffers, so hot kernels do not allocate per call.

use std::sync::Mutex;

/// Buffers kept for reuse; beyond this many, returned buffers are dropped.
const MAX_POOLED: usize = 32;

/// A pool of scratch buffers shared by the backend's kernels (and their rayon tasks).
#[derive(Debug, Default)]
pub(crate) struct ScratchPool {
    free: Mutex<Vec<Vec<f32>>>,
}

/// A buffer borrowed from a [`ScratchPool`]; it goes back to the pool when dropped.
pub(crate) struct Scratch<'a> {
    pool: &'a ScratchPool,
    buf: Vec<f32>,
    len: usize,
}

impl ScratchPool {
    /// A buffer of `len` elements with unspecified contents (callers overwrite what they read).
    pub fn take(&self, len: usize) -> Scratch<'_> {
        let mut buf = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            // Prefer the smallest buffer that is large enough, else the largest one.
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.len() >= len)
                .min_by_key(|(_, b)| b.len())
                .map(|(i, _)| i);
            let pick = fit.or_else(|| {
                free.iter()
                    .enumerate()
                    .max_by_key(|(_, b)| b.len())
                    .map(|(i, _)| i)
            });
            pick.map(|i| free.swap_remove(i)).unwrap_or_default()
        };
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        Scratch {
            pool: self,
            buf,
            len,
        }
    }
}

impl std::ops::Deref for Scratch<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[..self.len]
    }
}

impl std::ops::DerefMut for Scratch<'_> {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[..self.len]
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < MAX_POOLED {
            free.push(buf);
        }
    }
}
