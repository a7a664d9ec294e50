//! Gathering a batch from a dataset held on the device: rows of a byte table (images, one `u8`
//! per pixel, uploaded once) selected by index and mapped through a 256-entry value table
//! (the loader's `u8 → f32` with its normalisation, computed on the host, so a gathered batch
//! is bit-identical to the host loader's), and the matching labels. PyTorch's
//! `index_select(0, idx)` on a `uint8` tensor followed by a lookup; no gradient (it reads data).
//!
//! - [`spec`]: validation into a [`GatherGeometry`].
//! - `reference`, `cpu`, `gpu` (host code of `shaders/gather_rows.wgsl`).
//! - Tests: `tests/gather_rows.rs` (random tables and batches vs the reference, errors).

mod cpu;
mod gpu;
mod reference;
pub mod spec;

pub use spec::GatherGeometry;

use crate::Device;
use crate::device::{DeviceTensor, IndexTensor};
use crate::error::Result;

/// A `rows × row_len` table of bytes on one device, packed four to a `u32` word (little-endian:
/// byte `b` of the table is bits `8 (b mod 4)..` of word `b / 4`).
#[derive(Clone, Debug)]
pub struct ByteRows {
    rows: usize,
    row_len: usize,
    words: IndexTensor,
}

impl ByteRows {
    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Bytes per row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }
    /// The packed words.
    pub(crate) fn words(&self) -> &IndexTensor {
        &self.words
    }
}

/// Packs bytes four to a little-endian `u32` word (the last word zero-padded).
pub fn pack_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// Gathering over a checked geometry, on one backend's tensors.
pub trait GatherRowsKernels {
    /// `out[r, j] = values[table[indices[r], j]]`, shape `[indices.len(), row_len]`.
    fn gather_rows(
        &self,
        g: &GatherGeometry,
        table: &ByteRows,
        indices: &IndexTensor,
        values: &DeviceTensor,
    ) -> Result<DeviceTensor>;
    /// `out[r] = src[indices[r]]`.
    fn gather_indices(&self, src: &IndexTensor, indices: &IndexTensor) -> Result<IndexTensor>;
    /// A batch: the rows as [`GatherRowsKernels::gather_rows`] and `labels[indices[r]]` as
    /// [`GatherRowsKernels::gather_indices`], in one launch on a GPU.
    fn gather_batch(
        &self,
        g: &GatherGeometry,
        table: &ByteRows,
        labels: &IndexTensor,
        indices: &IndexTensor,
        values: &DeviceTensor,
    ) -> Result<(DeviceTensor, IndexTensor)> {
        Ok((
            self.gather_rows(g, table, indices, values)?,
            self.gather_indices(labels, indices)?,
        ))
    }
}

/// The host primitive of gathering, over the packed `words`:
/// `out[r * row_len + j] = values[byte(indices[r] * row_len + j)]`.
pub trait GatherRowsHostKernels {
    /// Fills `out` (`indices.len() * row_len` values).
    fn gather_rows(
        &self,
        words: &[u32],
        row_len: usize,
        indices: &[u32],
        values: &[f32],
        out: &mut [f32],
    );
}

/// Byte `b` of a packed table.
#[inline]
pub(crate) fn byte_at(words: &[u32], b: usize) -> u8 {
    (words[b / 4] >> (8 * (b % 4))) as u8
}

impl<K: GatherRowsHostKernels> GatherRowsKernels for K {
    fn gather_rows(
        &self,
        g: &GatherGeometry,
        table: &ByteRows,
        indices: &IndexTensor,
        values: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        const OP: &str = "gather_rows";
        let (shape, mut out) = DeviceTensor::host_output(&g.output_dims)?;
        let words = table.words().host(OP)?;
        self.gather_rows(
            words,
            g.row_len,
            indices.host(OP)?,
            values.host(OP)?,
            &mut out,
        );
        Ok(DeviceTensor::from_host(shape, out))
    }

    fn gather_indices(&self, src: &IndexTensor, indices: &IndexTensor) -> Result<IndexTensor> {
        const OP: &str = "gather_indices";
        let src = src.host(OP)?;
        let out = indices.host(OP)?.iter().map(|&i| src[i as usize]).collect();
        Ok(IndexTensor::from_host_kernel(out))
    }
}

impl Device {
    /// Uploads a `rows × row_len` byte table (a dataset's images), once, for
    /// [`Device::gather_rows`].
    pub fn upload_byte_rows(&self, bytes: &[u8], row_len: usize) -> Result<ByteRows> {
        let rows = spec::check_table(bytes.len(), row_len)?;
        let words = self.upload_indices(&pack_bytes(bytes))?;
        Ok(ByteRows {
            rows,
            row_len,
            words,
        })
    }

    /// The rows `indices` of `table`, each byte `v` becoming `values[v]` (256 values): a batch
    /// of a dataset held on the device, `[indices.len(), row_len]`. Indices must have been
    /// uploaded (so their largest value is known) and be below `table.rows()`.
    pub fn gather_rows(
        &self,
        table: &ByteRows,
        indices: &IndexTensor,
        values: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        let g = spec::check_gather(table, indices, values.shape())?;
        self.backend().gather_rows(&g, table, indices, values)
    }

    /// A batch of a dataset held on the device: [`Device::gather_rows`] of `table` and
    /// [`Device::gather_indices`] of `labels`, at the same `indices` (one GPU launch). Indices
    /// must have been uploaded and be below both `table.rows()` and `labels.len()`.
    pub fn gather_batch(
        &self,
        table: &ByteRows,
        labels: &IndexTensor,
        indices: &IndexTensor,
        values: &DeviceTensor,
    ) -> Result<(DeviceTensor, IndexTensor)> {
        let g = spec::check_gather(table, indices, values.shape())?;
        spec::check_indices("gather_batch", indices, labels.len())?;
        self.backend()
            .gather_batch(&g, table, labels, indices, values)
    }

    /// `src[indices[r]]` for every `r` (a batch's labels from the labels held on the device);
    /// indices must have been uploaded and be below `src.len()`.
    pub fn gather_indices(&self, src: &IndexTensor, indices: &IndexTensor) -> Result<IndexTensor> {
        spec::check_indices("gather_indices", indices, src.len())?;
        self.backend().gather_indices(src, indices)
    }
}
