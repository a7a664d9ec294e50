//! End-to-end tests of the `lenet` binary on tiny synthetic IDX datasets (fast, no network),
//! plus quick real-data runs when Debian's `dataset-fashion-mnist` is installed.

mod lenet_cli;

use lenet_cli::{
    as_strs, fixture, images_and_labels, lenet, make_dataset, metric_columns, ok, resume_args, run,
    text, train_args,
};
use std::path::PathBuf;

/// Asserts a clean failure: the exit code, one `error:` line, no panic or backtrace.
fn fails(args: &[&str], code: i32, needle: &str) {
    let out = run(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "lenet {args:?}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "lenet {args:?}: want `{needle}` in: {err}"
    );
    if code == 1 {
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn summary_matches_the_d2l_shape_loop() {
    let out = ok(&["summary"]);
    for line in [
        "Conv2d output shape:\t[1, 6, 28, 28]",
        "AvgPool2d output shape:\t[1, 6, 14, 14]",
        "Conv2d output shape:\t[1, 16, 10, 10]",
        "AvgPool2d output shape:\t[1, 16, 5, 5]",
        "Flatten output shape:\t[1, 400]",
        "Linear output shape:\t[1, 10]",
    ] {
        assert!(out.contains(line), "missing `{line}` in:\n{out}");
    }
    assert!(out.contains("61,706"));
    let modern = ok(&["summary", "--model", "modern", "--batch", "256"]);
    assert!(
        modern.contains("MaxPool2d output shape:\t[256, 6, 14, 14]"),
        "{modern}"
    );
}

#[test]
fn train_eval_predict_inspect_end_to_end() {
    let f = fixture();
    let args = train_args(&f, "run", &["--epochs", "3", "--lr", "0.9"]);
    let out = ok(&as_strs(&args));
    assert!(out.contains("training on cpu"), "{out}");
    assert!(out.contains("examples/sec on cpu"), "{out}");
    let last = out
        .lines()
        .find(|l| l.starts_with("loss "))
        .expect("d2l summary line");
    assert!(
        last.contains("train acc") && last.contains("test acc"),
        "{last}"
    );
    let run_dir = f.root.join("run");
    for file in [
        "metrics.csv",
        "curves.png",
        "config.json",
        "checkpoint.safetensors",
        "curve_points.csv",
    ] {
        assert!(run_dir.join(file).exists(), "{file} missing");
    }
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds"));

    let data = f.data.to_str().unwrap();
    let ck = run_dir.join("checkpoint.safetensors");
    let ck = ck.to_str().unwrap();
    let common = ["--dataset", "idx", "--data-dir", data, "--device", "cpu"];
    let mut eval = vec!["eval", "--checkpoint", ck];
    eval.extend(common);
    let out = ok(&eval);
    assert!(
        out.contains("test acc") && out.contains("confusion matrix"),
        "{out}"
    );
    assert!(run_dir.join("confusion.png").exists());

    let mut predict = vec!["predict", "--checkpoint", ck, "--test-index", "0", "7"];
    predict.extend(common);
    let out = ok(&predict);
    assert_eq!(
        out.lines().filter(|l| l.trim_end().ends_with('%')).count(),
        6,
        "{out}"
    );

    let png = f.root.join("item.png");
    let (img, _) = images_and_labels(1, 28, 10, 9);
    let file = std::fs::File::create(&png).unwrap();
    let mut enc = png::Encoder::new(file, 28, 28);
    enc.set_color(png::ColorType::Grayscale);
    enc.write_header().unwrap().write_image_data(&img).unwrap();
    let mut predict_png = vec!["predict", "--checkpoint", ck, png.to_str().unwrap()];
    predict_png.extend(common);
    let out = ok(&predict_png);
    assert!(out.contains("item.png"), "{out}");

    let mut inspect = vec!["inspect", "--checkpoint", ck, "--test-index", "3"];
    inspect.extend(common);
    ok(&inspect);
    for file in [
        "filters_conv1.png",
        "filters_conv2.png",
        "input_3.png",
        "features_1_conv2d.png",
        "features_3_avgpool2d.png",
    ] {
        assert!(run_dir.join(file).exists(), "{file} missing");
    }
}

#[test]
fn the_loss_falls_on_a_learnable_toy_set() {
    let f = fixture();
    let args = train_args(&f, "learn", &["--model", "modern", "--epochs", "4"]);
    ok(&as_strs(&args));
    let csv = std::fs::read_to_string(f.root.join("learn/metrics.csv")).unwrap();
    let losses: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(losses.last().unwrap() < &(losses[0] * 0.8), "{losses:?}");
}

#[test]
fn an_interrupted_run_resumes_to_the_same_metrics() {
    let f = fixture();
    ok(&as_strs(&train_args(
        &f,
        "full",
        &["--epochs", "3", "--seed", "5"],
    )));
    let cut = train_args(
        &f,
        "cut",
        &["--epochs", "3", "--seed", "5", "--stop-after-epoch", "1"],
    );
    ok(&as_strs(&cut));
    assert_eq!(metric_columns(&f.root.join("cut/metrics.csv")).len(), 2);
    let cut_dir = f.root.join("cut");
    let resumed = ok(&as_strs(&resume_args(
        f.data.to_str().unwrap(),
        &cut_dir,
        &[],
    )));
    assert!(resumed.contains("resuming"), "{resumed}");
    assert_eq!(
        metric_columns(&f.root.join("full/metrics.csv")),
        metric_columns(&f.root.join("cut/metrics.csv"))
    );
}

#[test]
fn sigkill_never_leaves_a_corrupt_checkpoint() {
    let f = fixture();
    let args = train_args(&f, "killed", &["--epochs", "400"]);
    let mut child = lenet()
        .args(as_strs(&args))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ck = f.root.join("killed/checkpoint.safetensors");
    let started = std::time::Instant::now();
    while !ck.exists() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Kill in the middle of later epochs, while checkpoints are being rewritten.
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ck.exists(), "no checkpoint was written in time");
    // The checkpoint left behind loads, and the run resumes from it.
    let data = f.data.to_str().unwrap();
    ok(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--dataset",
        "idx",
        "--data-dir",
        data,
        "--device",
        "cpu",
    ]);
    let config = f.root.join("killed/config.json");
    let cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"epochs\": 400", "\"epochs\": 1");
    std::fs::write(&config, cfg).unwrap();
    let out = run(&as_strs(&resume_args(data, &f.root.join("killed"), &[])));
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let f = fixture();
    let data = f.data.to_str().unwrap();
    fails(&["train", "--batch-size", "0"], 2, "batch-size");
    fails(&["train", "--lr", "NaN"], 2, "learning rate");
    fails(&["train", "--lr", "-0.5"], 2, "learning rate");
    fails(&["train", "--model", "resnet"], 2, "resnet");
    fails(&["train", "--device", "tpu"], 2, "tpu");
    fails(
        &[
            "eval",
            "--checkpoint",
            "/nonexistent/ck.safetensors",
            "--device",
            "cpu",
        ],
        1,
        "checkpoint",
    );

    // A truncated checkpoint and one with the wrong tensors.
    let good = f.root.join("good");
    ok(&as_strs(&train_args(&f, "good", &["--epochs", "1"])));
    let bytes = std::fs::read(good.join("checkpoint.safetensors")).unwrap();
    let cut = f.root.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &[
            "eval",
            "--checkpoint",
            cut.to_str().unwrap(),
            "--dataset",
            "idx",
            "--data-dir",
            data,
            "--device",
            "cpu",
        ],
        1,
        "checkpoint",
    );
    let mut wrong = tensor::NamedTensors::new();
    wrong
        .insert("1.weight", &tensor::Tensor::zeros(&[3, 3]).unwrap())
        .unwrap();
    let wrong_path = f.root.join("wrong.safetensors");
    wrong.write(&wrong_path).unwrap();
    fails(
        &[
            "eval",
            "--checkpoint",
            wrong_path.to_str().unwrap(),
            "--dataset",
            "idx",
            "--data-dir",
            data,
            "--device",
            "cpu",
        ],
        1,
        "1.bias",
    );

    // Data problems.
    let empty = f.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &[
            "train",
            "--dataset",
            "idx",
            "--data-dir",
            empty.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        1,
        "train-images",
    );
    let many = f.root.join("many-classes");
    make_dataset(&many, 28, 12, 48, 12);
    fails(
        &[
            "train",
            "--dataset",
            "idx",
            "--data-dir",
            many.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        1,
        "label",
    );
    let small = f.root.join("small-images");
    make_dataset(&small, 16, 10, 40, 10);
    fails(
        &[
            "train",
            "--dataset",
            "idx",
            "--data-dir",
            small.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        1,
        "28×28",
    );

    // A learning rate that makes the loss diverge stops with the epoch, the batch and a hint.
    let diverge = [
        "--model",
        "modern",
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--epochs",
        "1",
    ];
    let out = run(&as_strs(&train_args(&f, "diverged", &diverge)));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("at epoch") && err.contains("lower learning rate"),
        "{err}"
    );
    assert!(err.contains("no checkpoint"), "{err}");
    // A finished run is not overwritten by accident.
    fails(
        &as_strs(&train_args(&f, "good", &["--epochs", "1"])),
        1,
        "--resume",
    );

    // An image that is not a PNG.
    let not_png = f.root.join("notes.png");
    std::fs::write(&not_png, "hello").unwrap();
    let ck = good.join("checkpoint.safetensors");
    fails(
        &[
            "predict",
            "--checkpoint",
            ck.to_str().unwrap(),
            not_png.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        1,
        "not a readable PNG",
    );
}

/// A successful run says nothing that reads as an error, also where no desktop session exists
/// (no `XDG_RUNTIME_DIR`, as over ssh, in CI and containers): probing the GPU adapters must not
/// make the Vulkan loader's layers print Wayland's complaint about it.
///
/// conv-kernels' GPU context creates its Vulkan instance without window-system extensions, so
/// Mesa's device-select layer does not probe Wayland.
#[test]
fn a_successful_run_prints_no_error_line_without_a_desktop_session() {
    let f = fixture();
    let quiet = |args: &[String]| {
        let out = lenet()
            .env_remove("XDG_RUNTIME_DIR")
            .args(args)
            .output()
            .expect("start lenet");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "lenet {args:?} failed:\n{all}");
        let errors: Vec<&str> = all
            .lines()
            .filter(|l| l.to_lowercase().contains("error"))
            .collect();
        assert!(
            errors.is_empty(),
            "lenet {args:?} printed {errors:?} in:\n{all}"
        );
    };
    // `auto` probes the GPU adapters, as `cargo xtask train` does by default.
    let mut train = train_args(&f, "quiet", &["--epochs", "1"]);
    let device = train.iter().position(|a| a == "cpu").unwrap();
    train[device] = "auto".into();
    quiet(&train);
    let ck = f.root.join("quiet/checkpoint.safetensors");
    let predict: Vec<String> = [
        "predict",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--test-index",
        "0",
        "--dataset",
        "idx",
        "--data-dir",
        f.data.to_str().unwrap(),
        "--device",
        "auto",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    quiet(&predict);
}

fn debian_data() -> Option<PathBuf> {
    let dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
    if dir.join("train-images-idx3-ubyte.gz").exists() {
        Some(dir)
    } else {
        println!("skipped: Debian's dataset-fashion-mnist is not installed");
        None
    }
}

/// Trains on the first 4096 real images for one epoch; the loss must fall within the epoch.
fn real_data_epoch(device: &str) {
    if debian_data().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    let args = [
        "train",
        "--model",
        "modern",
        "--limit",
        "4096",
        "--epochs",
        "1",
        "--device",
        device,
        "--data-dir",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let stdout = ok(&args);
    assert!(stdout.contains("examples/sec"), "{stdout}");
    let points = std::fs::read_to_string(out.join("curve_points.csv")).unwrap();
    let losses: Vec<f64> = points
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        losses.len() >= 2 && losses.last() < losses.first(),
        "{losses:?}"
    );
}

#[test]
fn real_data_one_epoch_on_the_cpu() {
    real_data_epoch("cpu");
}

#[test]
fn real_data_one_epoch_on_the_gpu() {
    if fovea_test_support::gpu_under_test().is_none() {
        return;
    }
    real_data_epoch("gpu");
}

#[test]
fn resume_refuses_flags_that_disagree_with_the_saved_run() {
    let f = fixture();
    ok(&as_strs(&train_args(
        &f,
        "run",
        &["--epochs", "2", "--stop-after-epoch", "1"],
    )));
    let dir = f.root.join("run");
    let before = std::fs::read(dir.join("metrics.csv")).unwrap();
    let resume = |extra: &[&str]| resume_args(f.data.to_str().unwrap(), &dir, extra);
    for (flag, value) in [
        ("--lr", "0.5"),
        ("--epochs", "5"),
        ("--batch-size", "8"),
        ("--model", "modern"),
    ] {
        fails(&as_strs(&resume(&[flag, value])), 2, flag);
    }
    // Nothing was written by the refused runs.
    assert_eq!(std::fs::read(dir.join("metrics.csv")).unwrap(), before);
    // Flags that agree with the saved run are fine.
    let saved = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(saved.contains("\"epochs\": 2"), "{saved}");
    let out = ok(&as_strs(&resume(&["--epochs", "2"])));
    assert!(out.contains("resuming"), "{out}");
}

/// On a GPU the training and test sets are uploaded once: a step sends only its batch's
/// indices (4 bytes each) and reads back only the loss and correct count, in one submission;
/// and the run (test accuracy included) is the one `--upload-batches` (host-built batches)
/// gives, bit for bit.
#[test]
fn on_the_gpu_a_step_sends_only_indices_and_the_run_is_the_uploaded_batches_run() {
    if fovea_test_support::gpu_under_test().is_none() {
        return;
    }
    let f = fixture();
    let mut outputs = Vec::new();
    for (out, extra) in [("held", None), ("uploaded", Some("--upload-batches"))] {
        let mut a = train_args(&f, out, &["--epochs", "2", "--model", "modern"]);
        let device = a.iter().position(|s| s == "cpu").unwrap();
        a[device] = "gpu".into();
        a.extend(extra.map(String::from));
        outputs.push(ok(&as_strs(&a)));
    }
    let batch_bytes = 24 * 28 * 28 * 4;
    assert!(
        outputs[0].contains("training and test sets held on the device (240 and 60 images)"),
        "{}",
        outputs[0]
    );
    assert!(
        outputs[0].contains("1.0 submits, 96 bytes up, 8 bytes down"),
        "{}",
        outputs[0]
    );
    let uploaded = format!("1.0 submits, {} bytes up, 8 bytes down", batch_bytes + 96);
    assert!(outputs[1].contains(&uploaded), "{}", outputs[1]);
    assert!(!outputs[1].contains("held on the device"), "{}", outputs[1]);
    let (held, up) = (f.root.join("held"), f.root.join("uploaded"));
    assert_eq!(
        metric_columns(&held.join("metrics.csv")),
        metric_columns(&up.join("metrics.csv"))
    );
    let open =
        |dir: &PathBuf| tensor::TensorFile::open(dir.join("checkpoint.safetensors")).unwrap();
    let (a, b) = (open(&held), open(&up));
    assert_eq!(a.names(), b.names());
    for name in a.names() {
        let (x, y) = (a.tensor(name), b.tensor(name));
        if let (Ok(x), Ok(y)) = (x, y) {
            assert_eq!(x.data(), y.data(), "{name}");
        }
    }
}
