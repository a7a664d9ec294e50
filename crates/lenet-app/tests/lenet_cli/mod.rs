//! Running the `lenet` binary from the CLI test files (`cli.rs`, `cnn.rs`): the one copy of
//! the process helpers they share.

#![allow(dead_code)] // each test binary uses a different subset

use datasets::idx::{IdxArray, IdxData};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `lenet` binary under test, with a runtime directory so Mesa stays quiet.
pub fn lenet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lenet"));
    c.env("XDG_RUNTIME_DIR", "/tmp");
    c
}

/// Runs `lenet args...` to completion.
pub fn run(args: &[&str]) -> Output {
    lenet().args(args).output().expect("start lenet")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `lenet args...`, asserts success and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "lenet {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A learnable toy set: class c lights up row band c of the image, plus noise.
pub fn images_and_labels(n: usize, side: usize, classes: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = tensor::SeededRng::new(seed);
    let mut images = Vec::with_capacity(n * side * side);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        labels.push(c as u8);
        for y in 0..side {
            for _ in 0..side {
                let band = y * classes / side == c % classes.min(side);
                let noise = (rng.uniform01() * 60.0) as u8;
                images.push(if band { 195 + noise } else { noise });
            }
        }
    }
    (images, labels)
}

/// Writes one IDX file of unsigned bytes.
pub fn write_idx(dir: &Path, name: &str, dims: Vec<usize>, data: Vec<u8>) {
    let arr = IdxArray::new(dims, IdxData::U8(data)).expect("consistent idx");
    std::fs::write(dir.join(name), arr.to_bytes()).unwrap();
}

/// Writes a toy train/test set (see [`images_and_labels`]) in the IDX layout `--dataset idx` reads.
pub fn make_dataset(dir: &Path, side: usize, classes: usize, train_n: usize, test_n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n, seed) in [("train", train_n, 1), ("t10k", test_n, 2)] {
        let (img, lbl) = images_and_labels(n, side, classes, seed);
        write_idx(
            dir,
            &format!("{prefix}-images-idx3-ubyte"),
            vec![n, side, side],
            img,
        );
        write_idx(dir, &format!("{prefix}-labels-idx1-ubyte"), vec![n], lbl);
    }
}

/// A toy dataset in a temporary directory, and the directory runs go in.
pub struct Fixture {
    _tmp: tempfile::TempDir,
    /// The toy IDX set.
    pub data: PathBuf,
    /// Where runs go.
    pub root: PathBuf,
}

impl Fixture {
    /// A fixture over `data` and `root`, kept alive by `tmp`.
    pub fn new(tmp: tempfile::TempDir, data: PathBuf, root: PathBuf) -> Fixture {
        Fixture {
            _tmp: tmp,
            data,
            root,
        }
    }
}

/// The toy set of 240 training and 60 test images (28×28, 10 classes).
pub fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("toy");
    make_dataset(&data, 28, 10, 240, 60);
    let root = tmp.path().to_path_buf();
    Fixture {
        _tmp: tmp,
        data,
        root,
    }
}

/// `lenet train --resume dir` on the toy set (from `data_dir`), on the CPU, plus `extra`.
pub fn resume_args(data_dir: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["train", "--device", "cpu", "--dataset", "idx", "--data-dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(data_dir.to_string());
    a.push("--resume".to_string());
    a.push(dir.display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// `lenet train` on the fixture's toy set, on the CPU, batch 24, into `root/out`, plus `extra`.
pub fn train_args<'a>(f: &'a Fixture, out: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--dataset",
        "idx",
        "--data-dir",
        f.data.to_str().unwrap(),
        "--device",
        "cpu",
        "--batch-size",
        "24",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(f.root.join(out).display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// The arguments as `&str`s.
pub fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A run's `metrics.csv` without its timing columns (what a deterministic rerun reproduces).
pub fn metric_columns(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(4).collect::<Vec<_>>().join(","))
        .collect()
}
