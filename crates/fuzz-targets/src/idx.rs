//! The IDX targets: the bytes of an image or label file as the dataset loaders read them.

use datasets::idx;
use std::io::Cursor;
use std::path::Path;

const SOURCE: &str = "<fuzz input>";

/// `idx_raw`: uncompressed IDX bytes through the general parser and the `u8` fast path.
pub fn raw(data: &[u8]) {
    let path = Path::new(SOURCE);
    let _ = idx::parse_idx(data, path);
    let _ = idx::parse_idx_u8(data.to_vec(), path);
}

/// `idx_gzip`: a file as read from disk (gzip-compressed or raw): decompressed with the
/// loaders' bounds, then parsed.
pub fn gzip(data: &[u8]) {
    let _ = idx::parse_idx_reader(Cursor::new(data), Path::new(SOURCE));
}
