//! End-to-end tests of `lenet` with the deeper models (`nin-small`, `resnet-small`) on a tiny
//! synthetic IDX dataset: training writes checkpoints with batch-norm buffers, normalisation and
//! momentum state; eval, predict, inspect, summary and resume work on them; a bare PyTorch-style
//! `state_dict` loads with `--model`; bad checkpoints are refused naming the keys.

use datasets::idx::{IdxArray, IdxData};
use std::path::{Path, PathBuf};
mod lenet_cli;

use lenet_cli::{metric_columns, ok, run, text};
use tensor::{NamedTensors, TensorFile};

/// Asserts a clean failure with `code`, one line on stderr containing every needle.
fn fails(args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = run(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "lenet {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "lenet {args:?}: want `{n}` in: {err}");
    }
    err
}

/// Class `c` lights up row band `c`, plus noise.
fn make_dataset(dir: &Path, train_n: usize, test_n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n, seed) in [("train", train_n, 1), ("t10k", test_n, 2)] {
        let mut rng = tensor::SeededRng::new(seed);
        let mut images = Vec::with_capacity(n * 784);
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        for &c in &labels {
            for y in 0..28 {
                for _ in 0..28 {
                    let noise = (rng.uniform01() * 60.0) as u8;
                    images.push(if y * 10 / 28 == c as usize {
                        195 + noise
                    } else {
                        noise
                    });
                }
            }
        }
        let write = |name: String, dims, data| {
            let arr = IdxArray::new(dims, IdxData::U8(data)).unwrap();
            std::fs::write(dir.join(name), arr.to_bytes()).unwrap();
        };
        write(
            format!("{prefix}-images-idx3-ubyte"),
            vec![n, 28, 28],
            images,
        );
        write(format!("{prefix}-labels-idx1-ubyte"), vec![n], labels);
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: String,
}

fn fixture(train_n: usize) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let data = root.join("toy");
    make_dataset(&data, train_n, 40);
    Fixture {
        data: data.display().to_string(),
        root,
        _tmp: tmp,
    }
}

impl Fixture {
    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    /// `lenet <command> ...` on the toy set, on the CPU.
    fn args<'a>(&'a self, command: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            command,
            "--dataset",
            "idx",
            "--data-dir",
            &self.data,
            "--device",
            "cpu",
        ];
        a.extend_from_slice(rest);
        a
    }

    fn train(&self, model: &str, out: &str, rest: &[&str]) -> String {
        let out = self.path(out);
        let mut a = self.args(
            "train",
            &["--model", model, "--batch-size", "32", "--out", &out],
        );
        a.extend_from_slice(rest);
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// The model's tensors of a Fovea checkpoint written as `safetensors.torch.save_file` writes
/// `model.state_dict()`: every parameter and buffer by name (`num_batches_tracked` an int64 of
/// shape `[]`), no optimizer state, no metadata; `edit` may change the set first.
fn write_bare_state_dict(checkpoint: &Path, to: &Path, edit: impl Fn(&mut Vec<String>)) {
    let file = TensorFile::open(checkpoint).unwrap();
    let mut names: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| !n.starts_with("optim."))
        .map(str::to_string)
        .collect();
    edit(&mut names);
    let mut out = NamedTensors::new();
    for name in &names {
        let source = if file.contains(name) {
            name.as_str()
        } else {
            "0.1.running_mean" // an added buffer: any float tensor
        };
        if file.dtype(source).unwrap() == "I64" {
            let (dims, values) = file.i64(source).unwrap();
            assert!(dims.dims().is_empty(), "{name}: {dims:?}");
            out.insert_i64(name.clone(), &[], &values).unwrap();
        } else {
            out.insert_float(
                name.clone(),
                &file.tensor(source).unwrap(),
                tensor::FloatStorage::F32,
            )
            .unwrap();
        }
    }
    out.write(to).unwrap();
    assert!(TensorFile::open(to).unwrap().metadata().is_empty());
}

#[test]
fn resnet_small_trains_and_every_command_reads_its_checkpoint() {
    let f = fixture(256);
    let out = f.train("resnet-small", "run", &["--limit", "256", "--epochs", "1"]);
    assert!(out.contains("test acc"), "{out}");
    let dir = f.root.join("run");
    for file in [
        "metrics.csv",
        "curves.png",
        "config.json",
        "checkpoint.safetensors",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    for field in [
        "\"model\": \"resnet-small\"",
        "\"momentum\": 0.9",
        "\"nesterov\": true",
        "\"augment\": \"crop:2,flip\"",
        "\"normalize\": {",
    ] {
        assert!(config.contains(field), "{field} in {config}");
    }
    let ck = dir.join("checkpoint.safetensors");
    let file = TensorFile::open(&ck).unwrap();
    assert_eq!(file.metadata()["extra.model"], "resnet-small");
    assert_eq!(file.metadata()["extra.normalize"], "0.286,0.353");
    assert_eq!(file.dtype("3.1.bn2.num_batches_tracked").unwrap(), "I64");
    assert_eq!(file.i64("3.1.bn2.num_batches_tracked").unwrap().1, [8]);
    assert!(file.contains("optim.1.0.bn1.weight.momentum_buffer"));

    let ck = ck.display().to_string();
    let eval = ok(&f.args("eval", &["--checkpoint", &ck]));
    assert!(
        eval.contains("test acc") && eval.contains("confusion matrix"),
        "{eval}"
    );
    let predict = ok(&f.args("predict", &["--checkpoint", &ck, "--test-index", "0", "3"]));
    assert_eq!(
        predict.lines().filter(|l| l.ends_with('%')).count(),
        6,
        "{predict}"
    );
    let shown = f.path("shown");
    ok(&f.args(
        "inspect",
        &["--checkpoint", &ck, "--out", &shown, "--test-index", "2"],
    ));
    let mut drawn: Vec<String> = std::fs::read_dir(&shown)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    drawn.sort();
    assert_eq!(
        drawn,
        [
            "features_0_sequential.png",
            "features_1_sequential.png",
            "features_2_sequential.png",
            "features_3_sequential.png",
            "features_4_adaptiveavgpool2d.png",
            "filters_conv1.png",
            "input_2.png",
        ]
    );
    let summary = ok(&["summary", "--model", "resnet-small"]);
    assert!(
        summary.contains("1.0.conv1") && summary.contains("175,338"),
        "{summary}"
    );

    // A bare state_dict of the same weights: `--model` names the model, the model's default
    // normalisation applies, and the predictions are the checkpoint's.
    let bare = f.root.join("bare.safetensors");
    write_bare_state_dict(dir.join("checkpoint.safetensors").as_path(), &bare, |_| {});
    let bare = bare.display().to_string();
    let from_bare = ok(&f.args(
        "predict",
        &[
            "--checkpoint",
            &bare,
            "--model",
            "resnet-small",
            "--test-index",
            "0",
            "3",
        ],
    ));
    assert_eq!(from_bare, predict);
    let eval_bare = ok(&f.args("eval", &["--checkpoint", &bare, "--model", "resnet-small"]));
    let acc = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("test acc"))
            .unwrap()
            .to_string()
    };
    assert_eq!(acc(&eval_bare), acc(&eval));

    // Without --model the bare file is read as the seed LeNet: refused, with the way out.
    let quiet = f.path("quiet");
    fails(
        &f.args("eval", &["--checkpoint", &bare, "--out", &quiet]),
        1,
        &[
            "as a `seed` model",
            "pass --model resnet-small",
            "unexpected: ",
            "0.0.weight",
        ],
    );
    // Another model: every missing and unexpected key is named.
    fails(
        &f.args(
            "inspect",
            &[
                "--checkpoint",
                &bare,
                "--model",
                "nin-small",
                "--out",
                &quiet,
            ],
        ),
        1,
        &[
            "missing: 0.2.weight, 0.2.bias",
            "unexpected: ",
            "3.1.bn2.running_var",
            "wrong shape: 0.0.weight (expected [32, 1, 5, 5], found [16, 1, 3, 3])",
        ],
    );
    // A Fovea checkpoint names its model: another --model is refused.
    fails(
        &f.args(
            "predict",
            &["--checkpoint", &ck, "--model", "seed", "--test-index", "0"],
        ),
        1,
        &["holds a `resnet-small` model, not the `seed` given with --model"],
    );
    // Missing and extra buffers are named.
    let edited = f.root.join("edited.safetensors");
    write_bare_state_dict(
        dir.join("checkpoint.safetensors").as_path(),
        &edited,
        |names| {
            names.retain(|n| n != "2.0.bn1.num_batches_tracked" && n != "1.1.bn2.running_var");
            names.push("6.running_mean".into());
        },
    );
    let edited = edited.display().to_string();
    fails(
        &f.args(
            "eval",
            &[
                "--checkpoint",
                &edited,
                "--model",
                "resnet-small",
                "--out",
                &quiet,
            ],
        ),
        1,
        &[
            "missing: 1.1.bn2.running_var, 2.0.bn1.num_batches_tracked",
            "unexpected: 6.running_mean",
        ],
    );
    assert!(
        !Path::new(&quiet).exists(),
        "nothing is written for a bad checkpoint"
    );
}

#[test]
fn nin_small_trains_resumes_and_is_inspected() {
    let f = fixture(128);
    let common = ["--limit", "128", "--epochs", "2", "--seed", "3"];
    f.train("nin-small", "full", &common);
    let mut cut = common.to_vec();
    cut.extend(["--stop-after-epoch", "1"]);
    f.train("nin-small", "cut", &cut);
    let cut_dir = f.path("cut");
    let resumed = ok(&f.args("train", &["--resume", &cut_dir]));
    assert!(resumed.contains("resuming"), "{resumed}");
    assert_eq!(
        metric_columns(&f.root.join("full").join("metrics.csv")),
        metric_columns(&f.root.join("cut").join("metrics.csv"))
    );
    let ck = f.path("full/checkpoint.safetensors");
    let meta = TensorFile::open(&ck).unwrap().metadata().clone();
    assert_eq!(meta["optim.kind"], "adam");
    assert!(meta.contains_key("module_rng.4.rng.seed"), "{meta:?}");
    ok(&f.args("eval", &["--checkpoint", &ck]));
    ok(&f.args("predict", &["--checkpoint", &ck, "--test-index", "1"]));
    let shown = f.path("shown");
    ok(&f.args("inspect", &["--checkpoint", &ck, "--out", &shown]));
    for file in [
        "filters_conv1.png",
        "features_0_sequential.png",
        "features_3_maxpool2d.png",
        "features_5_sequential.png",
        "features_6_adaptiveavgpool2d.png",
    ] {
        assert!(Path::new(&shown).join(file).exists(), "{file} missing");
    }
    assert!(!Path::new(&shown).join("features_4_dropout.png").exists());
    assert!(!Path::new(&shown).join("filters_conv2.png").exists());
    let summary = ok(&["summary", "--model", "nin-small"]);
    assert!(
        summary.contains("5.4") && summary.contains("35,750"),
        "{summary}"
    );
}

#[test]
fn a_resumed_resnet_keeps_its_batch_norm_buffers_and_momentum() {
    let f = fixture(64);
    let common = ["--limit", "64", "--epochs", "2"];
    f.train("resnet-small", "full", &common);
    let mut cut = common.to_vec();
    cut.extend(["--stop-after-epoch", "1"]);
    f.train("resnet-small", "cut", &cut);
    let cut_dir = f.path("cut");
    ok(&f.args("train", &["--resume", &cut_dir]));
    assert_eq!(
        metric_columns(&f.root.join("full").join("metrics.csv")),
        metric_columns(&f.root.join("cut").join("metrics.csv"))
    );
    let a = TensorFile::open(f.root.join("full/checkpoint.safetensors")).unwrap();
    let b = TensorFile::open(f.root.join("cut/checkpoint.safetensors")).unwrap();
    // Two batches of 32 in each of two epochs.
    assert_eq!(a.i64("0.1.num_batches_tracked").unwrap().1, [4]);
    for name in [
        "1.0.bn1.running_var",
        "optim.6.weight.momentum_buffer",
        "6.weight",
    ] {
        assert_eq!(
            a.tensor(name).unwrap().data(),
            b.tensor(name).unwrap().data(),
            "{name}"
        );
    }
}

#[test]
fn settings_that_do_not_fit_are_refused_before_anything_is_written() {
    let f = fixture(32);
    let out = f.path("never");
    fails(
        &f.args(
            "train",
            &["--model", "nin-small", "--momentum", "0.9", "--out", &out],
        ),
        2,
        &["--momentum: applies to sgd, but the optimizer is adam"],
    );
    fails(
        &f.args("train", &["--nesterov", "--out", &out]),
        2,
        &["--nesterov: needs a momentum above 0"],
    );
    fails(
        &f.args(
            "train",
            &[
                "--model",
                "resnet-small",
                "--augment",
                "crop:28",
                "--out",
                &out,
            ],
        ),
        1,
        &[
            "--augment crop:28",
            "crop padding 28 does not fit 28×28 images",
        ],
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn resnet_small_trains_on_the_gpu() {
    if fovea_test_support::gpu_under_test().is_none() {
        return;
    }
    let f = fixture(32);
    let out = f.path("gpu");
    let mut a = f.args(
        "train",
        &[
            "--model",
            "resnet-small",
            "--limit",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "16",
        ],
    );
    a[6] = "gpu";
    a.extend(["--out", &out]);
    let stdout = ok(&a);
    assert!(stdout.contains("test acc"), "{stdout}");
    let ck = f.path("gpu/checkpoint.safetensors");
    let mut e = f.args("predict", &["--checkpoint", &ck, "--test-index", "0"]);
    e[6] = "gpu";
    ok(&e);
}
