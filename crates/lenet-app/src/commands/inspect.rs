//! `lenet inspect`: PNG grids of the learned conv filters and of one test image's feature maps.

use crate::cli::InspectArgs;
use crate::data;
use crate::file_out::write_gray_png;
use crate::inference::model_input;
use crate::restore::restore;
use anyhow::{Context, bail};
use autograd::Tape;
use datasets::Split;
use std::path::{Path, PathBuf};
use tensor::Tensor;

/// Pixels per tile pixel in the grids.
const ZOOM: usize = 8;
/// Gap between tiles, in output pixels.
const GAP: usize = 4;

/// Draws `tiles` (each `h × w` values, normalised to its own min..max) in a grid of `cols`.
fn write_grid(
    path: &Path,
    tiles: &[&[f32]],
    h: usize,
    w: usize,
    cols: usize,
) -> anyhow::Result<()> {
    let rows = tiles.len().div_ceil(cols);
    let (tw, th) = (w * ZOOM, h * ZOOM);
    let (width, height) = (cols * (tw + GAP) + GAP, rows * (th + GAP) + GAP);
    let mut img = vec![64u8; width * height];
    for (t, tile) in tiles.iter().enumerate() {
        let (lo, hi) = tile
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (x0, y0) = (GAP + (t % cols) * (tw + GAP), GAP + (t / cols) * (th + GAP));
        for y in 0..th {
            for x in 0..tw {
                let v = (tile[(y / ZOOM) * w + x / ZOOM] - lo) / span;
                img[(y0 + y) * width + x0 + x] = (v * 255.0).round() as u8;
            }
        }
    }
    write_gray_png(path, width as u32, height as u32, &img)
}

/// Runs `lenet inspect`; returns the files written.
pub fn run(args: InspectArgs) -> anyhow::Result<Vec<PathBuf>> {
    let r = restore(&args.checkpoint, args.model, &args.data)?;
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => r.path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut written = Vec::new();
    // The conv weights the model's view draws, `[out, in, kh, kw]`, in model order:
    // filters_conv1.png, ... (LeNet: every conv; the deeper models: the first).
    let conv_weights: Vec<Tensor> = r
        .model
        .filters()
        .into_iter()
        .map(|(_, p)| Ok(r.device.to_host(&p.value())?))
        .collect::<anyhow::Result<_>>()?;
    if conv_weights.is_empty() {
        bail!("checkpoint lacks conv weights");
    }
    for (k, w) in conv_weights.iter().enumerate() {
        let [o, i, kh, kw] = [w.dims()[0], w.dims()[1], w.dims()[2], w.dims()[3]];
        // One row per output channel, one column per input channel.
        let tiles: Vec<&[f32]> = w.data().chunks(kh * kw).collect();
        let path = out_dir.join(format!("filters_conv{}.png", k + 1));
        // One input channel: the filters in rows of up to 8.
        let cols = if i == 1 { o.min(8) } else { i };
        write_grid(&path, &tiles, kh, kw, cols)?;
        written.push(path);
    }
    let data = data::load(&args.data, &[Split::Test])?;
    let Some((img, label)) = data.test.get(args.test_index) else {
        bail!(
            "--test-index {} is out of range: the test set has {} items",
            args.test_index,
            data.test.len()
        );
    };
    let pixels = img.iter().map(|&b| b as f32 / 255.0);
    let x = Tensor::from_vec(&[1, 1, 28, 28], model_input(pixels, r.normalize))?;
    let input_path = out_dir.join(format!("input_{}.png", args.test_index));
    // Each tile is drawn scaled to its own range, so the normalised input looks as the image.
    write_grid(&input_path, &[x.data()], 28, 28, 1)?;
    written.push(input_path);
    let tape = Tape::new(&r.device);
    let _guard = tape.no_grad();
    let x = tape.constant(r.device.upload(&x)?);
    for map in r.model.feature_maps(&x)? {
        let maps = r.device.to_host(map.value.value())?;
        let (c, hh, ww) = (maps.dims()[1], maps.dims()[2], maps.dims()[3]);
        let tiles: Vec<&[f32]> = maps.data().chunks(hh * ww).collect();
        let path = out_dir.join(format!(
            "features_{}_{}.png",
            map.index,
            map.kind.to_lowercase()
        ));
        write_grid(&path, &tiles, hh, ww, c.min(8))?;
        written.push(path);
    }
    let class = data
        .class_names
        .get(label as usize)
        .cloned()
        .unwrap_or_default();
    println!("test item {} (class: {class})", args.test_index);
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(written)
}
