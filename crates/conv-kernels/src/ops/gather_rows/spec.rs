//! Validation of gathers: a table that fits `u32` byte offsets, indices known to be in range,
//! a 256-entry value table.

use super::ByteRows;
use crate::device::IndexTensor;
use crate::error::{Result, shape_err, spec_err};
use tensor::Shape;

/// The checked layout of a gather.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatherGeometry {
    /// Rows gathered.
    pub batch: usize,
    /// Bytes (output values) per row.
    pub row_len: usize,
    /// `[batch, row_len]`.
    pub output_dims: Vec<usize>,
}

/// A table of `len` bytes in rows of `row_len`: returns the row count.
pub(crate) fn check_table(len: usize, row_len: usize) -> Result<usize> {
    const OP: &str = "upload_byte_rows";
    if row_len == 0 {
        return Err(spec_err(OP, "rows must hold at least one byte"));
    }
    if !len.is_multiple_of(row_len) {
        return Err(spec_err(
            OP,
            format!("{len} bytes are not whole rows of {row_len}"),
        ));
    }
    if len > u32::MAX as usize {
        return Err(spec_err(
            OP,
            format!("{len} bytes are more than a table can address (2^32)"),
        ));
    }
    Ok(len / row_len)
}

/// Indices that were uploaded (largest value known) and are below `rows`.
pub(crate) fn check_indices(op: &'static str, indices: &IndexTensor, rows: usize) -> Result<()> {
    match indices.max_value() {
        _ if indices.is_empty() => Ok(()),
        Some(max) if (max as usize) < rows => Ok(()),
        Some(max) => Err(spec_err(
            op,
            format!("index {max} is out of range for {rows} rows"),
        )),
        None => Err(spec_err(
            op,
            "indices must be uploaded ones, whose range is known",
        )),
    }
}

/// A gather of `indices` from `table` through `values` (shape `[256]`).
pub(crate) fn check_gather(
    table: &ByteRows,
    indices: &IndexTensor,
    values: &Shape,
) -> Result<GatherGeometry> {
    const OP: &str = "gather_rows";
    if values.dims() != [256] {
        return Err(shape_err(OP, "values", "[256]", values));
    }
    check_indices(OP, indices, table.rows())?;
    let total = indices.len() as u64 * table.row_len() as u64;
    if total > u64::from(u32::MAX) {
        return Err(spec_err(
            OP,
            format!("{total} gathered values are more than one gather can address (2^32)"),
        ));
    }
    Ok(GatherGeometry {
        batch: indices.len(),
        row_len: table.row_len(),
        output_dims: vec![indices.len(), table.row_len()],
    })
}
