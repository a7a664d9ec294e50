//! Seed corpora for the fuzz targets, made from valid files: IDX sets written by the dataset
//! code (raw and gzip), and the checkpoints, `config.json` files and PNG images `lenet train`
//! and `lenet inspect` write for every registered model after a one-epoch run on a toy set.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use datasets::idx::{IdxArray, IdxData};
use flate2::{Compression, write::GzEncoder};
use lenet_app::cli::{Cli, Command};
use lenet_app::commands;
use lenet_app::models::ModelKind;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Side of the toy images (the registered models take 28×28).
const SIDE: usize = 28;
/// Training and test images of the toy set.
const TRAIN_N: usize = 32;
const TEST_N: usize = 8;

/// Writes every target's seeds under `out/<target>/`, training each registered model for one
/// epoch on a toy IDX set in `work` (run directories are kept there). Returns how many seed
/// files each target got.
pub fn write_all(out: &Path, work: &Path) -> anyhow::Result<Vec<(&'static str, usize)>> {
    let data = work.join("toy-idx");
    let idx_files = write_toy_set(&data)?;
    let mut counts = Vec::new();
    let mut idx_raw = Vec::new();
    let mut idx_gzip = Vec::new();
    for (name, bytes) in &idx_files {
        idx_raw.push((name.clone(), bytes.clone()));
        idx_gzip.push((format!("{name}.gz"), gzip(bytes)?));
    }
    counts.push(("idx_raw", save(out, "idx_raw", &idx_raw)?));
    counts.push(("idx_gzip", save(out, "idx_gzip", &idx_gzip)?));

    let mut checkpoints = Vec::new();
    let mut configs = Vec::new();
    let mut pngs = small_pngs()?;
    for &kind in ModelKind::value_variants() {
        let name = kind.name();
        let run = work.join(format!("run-{name}"));
        if run.exists() {
            std::fs::remove_dir_all(&run)
                .with_context(|| format!("cannot remove {}", run.display()))?;
        }
        lenet(&train_args(&name, &data, &run))?;
        lenet(&inspect_args(&data, &run))?;
        checkpoints.push((
            format!("{name}.safetensors"),
            read(&run.join("checkpoint.safetensors"))?,
        ));
        configs.push((format!("{name}.json"), read(&run.join("config.json"))?));
        for png in png_files(&run)?.into_iter().filter(|p| is_small(p)) {
            let file = png.file_name().map(|f| f.to_string_lossy().into_owned());
            pngs.push((format!("{name}-{}", file.unwrap_or_default()), read(&png)?));
        }
    }
    checkpoints.extend(tiny_checkpoints(work)?);
    counts.push(("checkpoint", save(out, "checkpoint", &checkpoints)?));
    counts.push(("png_input", save(out, "png_input", &pngs)?));
    counts.push(("run_config", save(out, "run_config", &configs)?));
    Ok(counts)
}

/// The largest PNG seed (`cargo xtask fuzz` holds png_input's inputs to 4 KB): bigger images
/// (loss curves, feature-map grids) slow every execution down without reaching code the small
/// ones do not.
const MAX_PNG_SEED: u64 = 4 << 10;

fn is_small(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() <= MAX_PNG_SEED)
}

/// The tiny trainees' checkpoints (see [`crate::checkpoint`]) after one step, optimizer state
/// and training position included.
fn tiny_checkpoints(work: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let device = conv_kernels::Device::cpu();
    let mut out = Vec::new();
    for mut t in crate::checkpoint::trainees(&device)? {
        if !t.name.starts_with("tiny") {
            continue;
        }
        crate::checkpoint::step_tiny(&mut t, &device)?;
        let state = nn_layers::TrainingState {
            epoch: 1,
            step: 1,
            rng: Some(tensor::SeededRng::new(3).state()),
            extra: [("note".to_string(), "fuzz seed".to_string())].into(),
        };
        let path = work.join(format!("{}.safetensors", t.name));
        nn_layers::checkpoint::save(
            &path,
            &device,
            &*t.net,
            Some(&*t.optimizer),
            &state,
            tensor::FloatStorage::F32,
        )?;
        out.push((format!("{}.safetensors", t.name), read(&path)?));
    }
    Ok(out)
}

/// Writes the toy set's four IDX files to `dir` and returns their names and bytes.
fn write_toy_set(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut files = Vec::new();
    for (prefix, n) in [("train", TRAIN_N), ("t10k", TEST_N)] {
        let images: Vec<u8> = (0..n * SIDE * SIDE).map(|_| next() as u8).collect();
        let labels: Vec<u8> = (0..n).map(|_| (next() % 10) as u8).collect();
        for (kind, dims, data) in [
            ("images-idx3-ubyte", vec![n, SIDE, SIDE], images),
            ("labels-idx1-ubyte", vec![n], labels),
        ] {
            let array = IdxArray::new(dims, IdxData::U8(data))
                .context("the toy set's dimensions match its data")?;
            let name = format!("{prefix}-{kind}");
            let bytes = array.to_bytes();
            std::fs::write(dir.join(&name), &bytes)
                .with_context(|| format!("cannot write {}", dir.join(&name).display()))?;
            files.push((name, bytes));
        }
    }
    Ok(files)
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// PNGs of the kinds `lenet predict` accepts: gray, RGB, RGBA, palette and 16-bit, at 28×28
/// and other sizes.
fn small_pngs() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    use png::{BitDepth, ColorType};
    let cases = [
        (
            "gray8-28.png",
            28,
            28,
            ColorType::Grayscale,
            BitDepth::Eight,
            1,
        ),
        (
            "gray16-28.png",
            28,
            28,
            ColorType::Grayscale,
            BitDepth::Sixteen,
            2,
        ),
        ("rgb8-40x30.png", 40, 30, ColorType::Rgb, BitDepth::Eight, 3),
        ("rgba8-17.png", 17, 17, ColorType::Rgba, BitDepth::Eight, 4),
        (
            "gray-alpha8-9x50.png",
            9,
            50,
            ColorType::GrayscaleAlpha,
            BitDepth::Eight,
            2,
        ),
    ];
    let mut out = Vec::new();
    for (name, w, h, color, depth, bytes_per_pixel) in cases {
        let data: Vec<u8> = (0..w * h * bytes_per_pixel)
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        out.push((
            name.to_string(),
            encode(w as u32, h as u32, color, depth, None, &data)?,
        ));
    }
    let palette: Vec<u8> = (0..16 * 3).map(|i| (i * 16) as u8).collect();
    let indices: Vec<u8> = (0..28 * 28).map(|i| (i % 16) as u8).collect();
    out.push((
        "palette8-28.png".into(),
        encode(
            28,
            28,
            ColorType::Indexed,
            BitDepth::Eight,
            Some(palette),
            &indices,
        )?,
    ));
    Ok(out)
}

fn encode(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<Vec<u8>>,
    data: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        if let Some(p) = palette {
            enc.set_palette(p);
        }
        let mut writer = enc.write_header()?;
        writer.write_image_data(data)?;
    }
    Ok(bytes)
}

fn train_args(model: &str, data: &Path, run: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--model",
        model,
        "--dataset",
        "idx",
        "--device",
        "cpu",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["--epochs", "1", "--batch-size", "16"].map(String::from));
    args.extend(["--data-dir".into(), data.display().to_string()]);
    args.extend(["--out".into(), run.display().to_string()]);
    args
}

fn inspect_args(data: &Path, run: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["inspect", "--dataset", "idx", "--device", "cpu"]
        .map(String::from)
        .to_vec();
    args.extend(["--data-dir".into(), data.display().to_string()]);
    args.extend(["--checkpoint".into(), run.display().to_string()]);
    args.extend(["--out".into(), run.join("inspect").display().to_string()]);
    args
}

/// Runs a `lenet` subcommand in this process, as the binary would.
fn lenet(args: &[String]) -> anyhow::Result<()> {
    let cli =
        Cli::try_parse_from(std::iter::once("lenet".to_string()).chain(args.iter().cloned()))?;
    match cli.command {
        Command::Train(a) => commands::train::run(a),
        Command::Inspect(a) => commands::inspect::run(a).map(|_| ()),
        _ => anyhow::bail!("the seeds need only train and inspect"),
    }
    .with_context(|| format!("lenet {}", args.join(" ")))
}

fn png_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(png_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "png") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes `files` into `out/target/` and returns how many.
fn save(out: &Path, target: &str, files: &[(String, Vec<u8>)]) -> anyhow::Result<usize> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files.len())
}
