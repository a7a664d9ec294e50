//! Turning an arbitrary PNG into the 28×28 grayscale input the model expects.
//!
//! The conversion, step by step:
//! 1. Decode any PNG colour type and bit depth (palette and low bit depths are expanded,
//!    16-bit samples reduced to 8).
//! 2. Colour becomes luminance `0.299 R + 0.587 G + 0.114 B`; transparent pixels are composited
//!    over black (Fashion-MNIST's background).
//! 3. The image is scaled, keeping its aspect ratio, so its longer side is 28 pixels (each output
//!    pixel is the area-weighted mean of the source pixels it covers), then centred on a black
//!    28×28 canvas.
//! 4. Fashion-MNIST shows bright garments on a dark background; when the image's border is mostly
//!    light (a product photo on white), intensities are inverted.
//! 5. Values are scaled to `[0, 1]` exactly as the dataset loader does (`u8 / 255`).

use anyhow::{Context, bail};
use std::path::Path;

/// Side length of the model's input.
pub const SIDE: usize = 28;
/// Largest decoded image accepted, in bytes (4096×4096 RGBA, 8192×8192 gray), so that a
/// hostile header cannot exhaust memory: the intensities kept while scaling take at most four
/// times this (one `f32` per gray pixel), and a truncated file only what it holds.
const MAX_DECODED_BYTES: usize = 64 << 20;

/// A decoded 8-bit grayscale image.
struct Gray {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

/// Reads a PNG file and returns 28×28 intensities in `[0, 1]` (see the module docs).
pub fn load_png_as_input(path: &Path) -> anyhow::Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    png_bytes_as_input(&bytes)
        .with_context(|| format!("{} is not a readable PNG image", path.display()))
}

/// The bytes of a PNG file as 28×28 intensities in `[0, 1]` (see the module docs); what
/// [`load_png_as_input`] does after reading the file, and what the `png_input` fuzz target runs.
pub fn png_bytes_as_input(bytes: &[u8]) -> anyhow::Result<Vec<f32>> {
    Ok(to_model_input(&decode(bytes)?))
}

fn decode(bytes: &[u8]) -> anyhow::Result<Gray> {
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits {
            bytes: MAX_DECODED_BYTES,
        },
    );
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info()?;
    let (width, height) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    if width == 0 || height == 0 {
        bail!("image has no pixels ({width}×{height})");
    }
    // png 0.18.1 panics expanding a palette that is not whole RGB triples (image-rs/image-png
    // #694, fixed upstream, unreleased); the PNG spec forbids it, so refuse it first.
    if let Some(palette) = &reader.info().palette
        && palette.len() % 3 != 0
    {
        bail!(
            "its palette (PLTE) holds {} bytes, not whole RGB entries",
            palette.len()
        );
    }
    let size = reader
        .output_buffer_size()
        .context("image dimensions are too large")?;
    if size > MAX_DECODED_BYTES {
        bail!("image of {width}×{height} is too large to decode");
    }
    let channels = reader.output_color_type().0.samples();
    let mut pixels = Vec::new();
    if reader.info().interlaced {
        // Adam7 passes are not whole rows: keep each pass's rows as they arrive (memory follows
        // the data the file holds), and place them once every pass has been read.
        let mut passes = Vec::new();
        while let Some(row) = reader.next_interlaced_row()? {
            if let png::InterlaceInfo::Adam7(info) = row.interlace() {
                passes.push((*info, row.data().to_vec()));
            }
        }
        let stride = width * channels;
        let mut image = vec![0u8; stride * height];
        let bits = (8 * channels) as u8;
        for (info, row) in &passes {
            png::expand_interlaced_row(&mut image, stride, row, info, bits);
        }
        for row in image.chunks_exact(stride) {
            push_gray_row(row, channels, width, &mut pixels);
        }
    } else {
        // Row by row, so that memory grows with the data the file holds, not with the size
        // its header claims (a truncated file stops at its first missing row).
        while let Some(row) = reader.next_row()? {
            push_gray_row(row.data(), channels, width, &mut pixels);
        }
    }
    if pixels.len() != width * height {
        bail!(
            "image data holds {} of {width}×{height} pixels",
            pixels.len()
        );
    }
    Ok(Gray {
        width,
        height,
        pixels,
    })
}

/// Appends the first `width` pixels of one decoded row (8-bit samples, `channels` per pixel)
/// as intensities in `[0, 1]`: luma for colour, multiplied by alpha where there is one.
fn push_gray_row(row: &[u8], channels: usize, width: usize, out: &mut Vec<f32>) {
    let f = |v: u8| v as f32 / 255.0;
    let luma = |p: &[u8]| 0.299 * f(p[0]) + 0.587 * f(p[1]) + 0.114 * f(p[2]);
    let pixels = row.chunks_exact(channels).take(width);
    match channels {
        1 => out.extend(pixels.map(|p| f(p[0]))),
        2 => out.extend(pixels.map(|p| f(p[0]) * f(p[1]))),
        3 => out.extend(pixels.map(luma)),
        _ => out.extend(pixels.map(|p| luma(p) * f(p[3]))),
    }
}

fn to_model_input(img: &Gray) -> Vec<f32> {
    let scale = SIDE as f64 / img.width.max(img.height) as f64;
    let out_w = ((img.width as f64 * scale).round() as usize).clamp(1, SIDE);
    let out_h = ((img.height as f64 * scale).round() as usize).clamp(1, SIDE);
    let (x0, y0) = ((SIDE - out_w) / 2, (SIDE - out_h) / 2);
    let invert = border_mean(img) > 0.5;
    let mut out = vec![0.0f32; SIDE * SIDE];
    for oy in 0..out_h {
        for ox in 0..out_w {
            let v = area_mean(img, ox, oy, out_w, out_h);
            let v = if invert { 1.0 - v } else { v };
            // Quantise like the dataset (u8 / 255) so both inputs look the same to the model.
            out[(y0 + oy) * SIDE + x0 + ox] = (v * 255.0).round().clamp(0.0, 255.0) / 255.0;
        }
    }
    out
}

/// Mean of the source pixels covered by output pixel (ox, oy) of an out_w×out_h image.
fn area_mean(img: &Gray, ox: usize, oy: usize, out_w: usize, out_h: usize) -> f32 {
    let sx = img.width as f64 / out_w as f64;
    let sy = img.height as f64 / out_h as f64;
    let (fx0, fx1) = (ox as f64 * sx, (ox + 1) as f64 * sx);
    let (fy0, fy1) = (oy as f64 * sy, (oy + 1) as f64 * sy);
    let mut sum = 0.0;
    let mut weight = 0.0;
    for y in fy0.floor() as usize..(fy1.ceil() as usize).min(img.height) {
        let wy = (fy1.min(y as f64 + 1.0) - fy0.max(y as f64)).max(0.0);
        for x in fx0.floor() as usize..(fx1.ceil() as usize).min(img.width) {
            let wx = (fx1.min(x as f64 + 1.0) - fx0.max(x as f64)).max(0.0);
            sum += img.pixels[y * img.width + x] as f64 * wx * wy;
            weight += wx * wy;
        }
    }
    if weight > 0.0 {
        (sum / weight) as f32
    } else {
        0.0
    }
}

fn border_mean(img: &Gray) -> f32 {
    let (w, h) = (img.width, img.height);
    let mut sum = 0.0f64;
    let mut n = 0usize;
    for y in 0..h {
        for x in 0..w {
            if y == 0 || x == 0 || y + 1 == h || x + 1 == w {
                sum += img.pixels[y * w + x] as f64;
                n += 1;
            }
        }
    }
    (sum / n as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
        let file = std::fs::File::create(path).unwrap();
        let mut enc = png::Encoder::new(file, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(data).unwrap();
    }

    #[test]
    fn grayscale_28_passes_through() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        let data: Vec<u8> = (0..28 * 28)
            .map(|i| if i % 28 == 14 { 255 } else { 0 })
            .collect();
        write_png(&p, 28, 28, png::ColorType::Grayscale, &data);
        let x = load_png_as_input(&p).unwrap();
        assert_eq!(x.len(), 784);
        assert_eq!(x[14], 1.0);
        assert_eq!(x[0], 0.0);
    }

    #[test]
    fn rgb_on_white_is_resized_centred_and_inverted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        // 56×28 white image with a black 8×8 square in the middle.
        let (w, h) = (56usize, 28usize);
        let mut data = vec![255u8; w * h * 3];
        for y in 10..18 {
            for x in 24..32 {
                data[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(0);
            }
        }
        write_png(&p, w as u32, h as u32, png::ColorType::Rgb, &data);
        let x = load_png_as_input(&p).unwrap();
        // Scaled to 28×14, centred vertically at rows 7..21; the square becomes bright.
        assert_eq!(x[0], 0.0, "padding is black");
        assert!(x[14 * 28 + 14] > 0.9, "inverted square is bright");
        assert!(x[8 * 28 + 2] < 0.1, "inverted white background is dark");
    }

    /// An Adam7-interlaced 8-bit gray PNG of `pixels` (`w × h`), its data in stored (not
    /// compressed) deflate blocks, written by hand: the encoder writes no interlaced images.
    fn interlaced_png(w: usize, h: usize, pixels: &[u8]) -> Vec<u8> {
        const START_ROW: [usize; 7] = [0, 0, 4, 0, 2, 0, 1];
        const START_COL: [usize; 7] = [0, 4, 0, 2, 0, 1, 0];
        const ROW_STEP: [usize; 7] = [8, 8, 8, 4, 4, 2, 2];
        const COL_STEP: [usize; 7] = [8, 8, 4, 4, 2, 2, 1];
        let mut raw = Vec::new();
        for pass in 0..7 {
            let cols: Vec<usize> = (START_COL[pass]..w).step_by(COL_STEP[pass]).collect();
            if cols.is_empty() {
                continue;
            }
            for y in (START_ROW[pass]..h).step_by(ROW_STEP[pass]) {
                raw.push(0); // filter: none
                raw.extend(cols.iter().map(|&x| pixels[y * w + x]));
            }
        }
        let mut zlib = vec![0x78, 0x01, 0x01];
        let len = raw.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend(&raw);
        let (mut a, mut b) = (1u32, 0u32);
        for &v in &raw {
            a = (a + u32::from(v)) % 65521;
            b = (b + a) % 65521;
        }
        zlib.extend(((b << 16) | a).to_be_bytes());
        let mut info = png::Info::with_size(w as u32, h as u32);
        info.interlaced = true;
        let mut out = Vec::new();
        let mut writer = png::Encoder::with_info(&mut out, info)
            .unwrap()
            .write_header()
            .unwrap();
        writer.write_chunk(png::chunk::IDAT, &zlib).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn an_interlaced_png_reads_as_the_same_image_plain() {
        let (w, h) = (13, 11);
        let pixels: Vec<u8> = (0..w * h).map(|i| (i * 37 % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.png");
        write_png(
            &plain,
            w as u32,
            h as u32,
            png::ColorType::Grayscale,
            &pixels,
        );
        let interlaced = png_bytes_as_input(&interlaced_png(w, h, &pixels)).unwrap();
        assert_eq!(interlaced, load_png_as_input(&plain).unwrap());
        // Cut short, it is refused before the whole image is allocated.
        let bytes = interlaced_png(w, h, &pixels);
        assert!(png_bytes_as_input(&bytes[..bytes.len() - 40]).is_err());
    }

    #[test]
    fn a_file_claiming_a_large_image_with_one_row_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.png");
        // A valid 8000×8000 header, then a single row of data.
        let mut enc = png::Encoder::new(std::fs::File::create(&p).unwrap(), 8000, 8000);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        let mut stream = w.stream_writer().unwrap();
        use std::io::Write;
        stream.write_all(&[7u8; 8000]).unwrap();
        drop(stream);
        let err = load_png_as_input(&p).unwrap_err();
        assert!(format!("{err:#}").contains("big.png"), "{err:#}");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.png");
        std::fs::write(&p, b"definitely not a png").unwrap();
        let err = load_png_as_input(&p).unwrap_err();
        assert!(format!("{err:#}").contains("not a readable PNG"), "{err:#}");
        assert!(load_png_as_input(&dir.path().join("missing.png")).is_err());
    }
}
