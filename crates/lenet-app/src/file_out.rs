//! Writing files atomically (temporary file, fsync, rename), so a crash never leaves half a file:
//! raw bytes (config, metrics) and PNG images.

use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot move the new file into place at {}", path.display()))?;
    Ok(())
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
