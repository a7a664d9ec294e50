//! Writing files atomically (temporary file, fsync, rename), so a crash never leaves half a file:
//! raw bytes (config, metrics) and PNG images. A crash can leave the temporary file behind
//! (`.NAME.tmp.PID.N`); [`crate::run_dir::RunDir::remove_stale_temporaries`] removes those.

use anyhow::anyhow;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory, fsync and rename
/// (`tensor`'s writer, the one checkpoints use); the error names the file and the cause
/// ("No space left on device"), and a failed write leaves the previous file as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    tensor::safetensors_io::write_atomic(path, bytes).map_err(|e| anyhow!("cannot write {e}"))
}

fn encode(width: u32, height: u32, color: png::ColorType, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(data)?;
    Ok(out)
}

/// Encodes an 8-bit RGB image and writes it atomically.
pub fn write_rgb_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, &encode(width, height, png::ColorType::Rgb, rgb)?)
}

/// Encodes an 8-bit grayscale image and writes it atomically.
pub fn write_gray_png(path: &Path, width: u32, height: u32, gray: &[u8]) -> anyhow::Result<()> {
    write_atomic(
        path,
        &encode(width, height, png::ColorType::Grayscale, gray)?,
    )
}
