//! The faults a long training run meets, on the `lenet` binary: Ctrl-C and SIGTERM (stop at a
//! batch boundary, save that batch, exit 130/143; a second signal exits at once), SIGKILL at
//! random moments (resume always works, no half-written file, metrics never go backwards), and
//! a full disk while writing each of the run's files (a clear error naming the file; the last
//! checkpoint intact; resume continues from it).

mod lenet_cli;

use lenet_cli::{
    Fixture, as_strs, lenet, make_dataset, metric_columns, ok, resume_args, run, text, train_args,
};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tensor::TensorFile;

/// A toy set large enough that an epoch takes a noticeable time (100 batches of 24).
fn slow_fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("toy");
    make_dataset(&data, 28, 10, 2400, 48);
    let root = tmp.path().to_path_buf();
    Fixture::new(tmp, data, root)
}

/// Sends `signal` (`INT`, `TERM`, ...) to a child with the system's `kill`.
fn send(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Starts `lenet args...` and waits until it says it is training (its handlers are installed
/// from the start, so signals from then on reach them).
fn start_training(args: &[String]) -> Child {
    let mut child = lenet()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lenet");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    if !first.starts_with("training on") {
        let out = child.wait_with_output().unwrap();
        panic!(
            "lenet {args:?} did not start: {first}\n{}",
            text(&out.stderr)
        );
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Every tensor of a checkpoint, by name, as raw values (bit-exact comparison).
fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    let file = TensorFile::open(path).unwrap();
    let mut out = Vec::new();
    for name in file.names() {
        let values = if file.is_i64(name).unwrap() {
            file.i64(name)
                .unwrap()
                .1
                .iter()
                .map(|&v| v as u32)
                .collect()
        } else {
            let t = file.tensor(name).unwrap();
            t.data().iter().map(|v| v.to_bits()).collect()
        };
        out.push((name.to_string(), values));
    }
    out
}

/// Asserts that run `dir` ended exactly where the uninterrupted run `reference` did: the same
/// metrics (timing aside) and bit-identical model and optimizer tensors.
fn assert_same_run(dir: &Path, reference: &Path) {
    assert_eq!(
        metric_columns(&dir.join("metrics.csv")),
        metric_columns(&reference.join("metrics.csv"))
    );
    assert!(
        tensors(&dir.join("checkpoint.safetensors"))
            == tensors(&reference.join("checkpoint.safetensors")),
        "the resumed run's tensors differ from the uninterrupted run's"
    );
}

/// Files in `dir` whose names mark them as temporaries of an atomic write.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp."))
                .collect()
        })
        .unwrap_or_default()
}

const EPOCHS: &str = "3";

#[test]
fn a_stop_signal_saves_the_batch_it_reached_and_resume_finishes_the_same_run() {
    let f = slow_fixture();
    let started = Instant::now();
    ok(&as_strs(&train_args(&f, "whole", &["--epochs", EPOCHS])));
    let whole = started.elapsed();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let name = format!("stopped-{signal}");
        let child = start_training(&train_args(&f, &name, &["--epochs", EPOCHS]));
        // Inside the run (its start-up is already behind it), usually inside an epoch.
        std::thread::sleep(whole / 3);
        send(&child, signal);
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        let dir = f.root.join(&name);
        if out.status.success() {
            // The machine ran the whole run before the signal came: nothing to check here.
            eprintln!("SIG{signal} came after the run finished; ran in {whole:?}");
            continue;
        }
        assert_eq!(out.status.code(), Some(code), "SIG{signal}: {err}");
        assert!(
            err.contains(&format!("stopped by SIG{signal}")) && err.contains("--resume"),
            "{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("error:"),
            "{err}"
        );
        assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
        let resumed = ok(&as_strs(&resume_args(f.data.to_str().unwrap(), &dir, &[])));
        assert!(resumed.contains("resuming"), "{resumed}");
        assert_same_run(&dir, &f.root.join("whole"));
    }
}

#[test]
fn a_second_stop_signal_exits_at_once() {
    let f = slow_fixture();
    // One resnet-small step on 2400 images takes seconds: far longer than between the signals.
    let mut args = train_args(&f, "twice", &["--model", "resnet-small", "--epochs", "1"]);
    let at = args.iter().position(|a| a == "--batch-size").unwrap();
    args[at + 1] = "2400".into();
    let child = start_training(&args);
    std::thread::sleep(Duration::from_millis(300));
    send(&child, "INT");
    std::thread::sleep(Duration::from_millis(100));
    let second = Instant::now();
    send(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        !err.contains("stopped by"),
        "the second signal should end the step at once: {err}"
    );
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "{:?}",
        second.elapsed()
    );
}

#[test]
fn sigkill_at_random_moments_never_loses_the_run() {
    let f = slow_fixture();
    let epochs = "4";
    let started = Instant::now();
    ok(&as_strs(&train_args(&f, "whole", &["--epochs", epochs])));
    let whole = started.elapsed();
    let dir = f.root.join("killed");
    let data = f.data.to_str().unwrap();
    let mut rng = tensor::SeededRng::new(13);
    let (mut epochs_saved, mut rows_seen) = (0u64, 0usize);
    for trial in 0..24 {
        let args = if dir.join("config.json").exists() {
            resume_args(data, &dir, &[])
        } else {
            train_args(&f, "killed", &["--epochs", epochs])
        };
        let mut child = lenet()
            .args(as_strs(&args))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere from start-up to a few epochs in.
        let delay = whole.mul_f64(0.6 * f64::from(rng.uniform01()));
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();

        // Whatever is there is whole: the config and checkpoint parse, the metrics are rows of
        // the uninterrupted run, and nothing went backwards.
        let config = dir.join("config.json");
        if config.exists() {
            let text = std::fs::read_to_string(&config).unwrap();
            assert!(text.trim_end().ends_with('}'), "trial {trial}: {text}");
        }
        let ck = dir.join("checkpoint.safetensors");
        if ck.exists() {
            let file = TensorFile::open(&ck).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
            let epoch: u64 = file.metadata()["epoch"].parse().unwrap();
            assert!(epoch >= epochs_saved, "trial {trial}: checkpoint went back");
            epochs_saved = epoch;
        }
        let metrics = dir.join("metrics.csv");
        if metrics.exists() {
            let rows = metric_columns(&metrics);
            let reference = metric_columns(&f.root.join("whole/metrics.csv"));
            assert_eq!(rows[..], reference[..rows.len()], "trial {trial}");
            assert!(rows.len() >= rows_seen, "trial {trial}: metrics went back");
            rows_seen = rows.len();
        }
        let png = dir.join("curves.png");
        if png.exists() {
            let bytes = std::fs::read(&png).unwrap();
            png::Decoder::new(std::io::Cursor::new(bytes))
                .read_info()
                .unwrap_or_else(|e| panic!("trial {trial}: curves.png: {e}"));
        }
    }
    let args = if dir.join("config.json").exists() {
        resume_args(data, &dir, &[])
    } else {
        train_args(&f, "killed", &["--epochs", epochs])
    };
    ok(&as_strs(&args));
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    assert_same_run(&dir, &f.root.join("whole"));
}

/// A size-limited tmpfs mounted for one test (root only), unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    filler: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` under `parent`, or `None` when this process may not mount.
    fn mount(parent: &Path, bytes: usize) -> Option<SmallDisk> {
        let path = parent.join("disk");
        std::fs::create_dir_all(&path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let filler = path.join("filler");
        mounted.then_some(SmallDisk { path, filler })
    }

    /// Fills the disk, then frees `free` bytes of it again.
    fn fill_leaving(&self, free: u64) {
        let mut file = std::fs::File::create(&self.filler).unwrap();
        let chunk = vec![0xa5u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        let len = std::fs::metadata(&self.filler).unwrap().len();
        file.set_len(len.saturating_sub(free)).unwrap();
    }

    /// Frees the whole disk again.
    fn empty(&self) {
        let _ = std::fs::remove_file(&self.filler);
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Asserts one clean runtime error naming `file` and the full disk.
fn fails_for_lack_of_space(args: &[String], file: &str) {
    let out = run(&as_strs(args));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(file) && err.contains("No space left on device"),
        "want {file} and the cause in: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_full_disk_names_the_file_keeps_the_checkpoint_and_resume_continues() {
    let f = lenet_cli::fixture();
    let Some(disk) = SmallDisk::mount(&f.root, 4 << 20) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = f.data.to_str().unwrap();
    let run_dir = disk.path.join("run");
    let out = run_dir.to_str().unwrap();
    let first = |epochs: &str| -> Vec<String> {
        let mut a = train_args(&f, "unused", &["--epochs", epochs]);
        let at = a.iter().position(|s| s == "--out").unwrap();
        a[at + 1] = out.to_string();
        a
    };

    // A new run on a full disk: its config cannot be written.
    disk.fill_leaving(0);
    fails_for_lack_of_space(&first("2"), "config.json");
    assert!(temporaries(&run_dir).is_empty());
    disk.empty();
    std::fs::remove_dir_all(&run_dir).unwrap();

    // One epoch on an empty disk, then epoch 2 on a full one: the metrics cannot be written.
    let mut one = first("2");
    one.extend(["--stop-after-epoch".to_string(), "1".to_string()]);
    ok(&as_strs(&one));
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let saved = std::fs::read(&checkpoint).unwrap();
    disk.fill_leaving(0);
    fails_for_lack_of_space(&resume_args(data, &run_dir, &[]), "metrics.csv");
    assert_eq!(std::fs::read(&checkpoint).unwrap(), saved);

    // Room for the new CSV files but not for the chart.
    disk.empty();
    let size = |n: &str| std::fs::metadata(run_dir.join(n)).map_or(0, |m| m.len());
    let chart = size("curves.png");
    let csvs = size("metrics.csv") + size("curve_points.csv");
    assert!(csvs + (16 << 10) < chart, "chart too small for this test");
    disk.fill_leaving(csvs + (12 << 10));
    fails_for_lack_of_space(&resume_args(data, &run_dir, &[]), "curves.png");
    assert_eq!(std::fs::read(&checkpoint).unwrap(), saved);

    // Room for the small files but not for a second checkpoint beside the first.
    disk.empty();
    let small: u64 = [
        "metrics.csv",
        "curve_points.csv",
        "curves.png",
        "config.json",
    ]
    .iter()
    .map(|n| std::fs::metadata(run_dir.join(n)).map_or(0, |m| m.len()))
    .sum();
    assert!(
        small + (64 << 10) < saved.len() as u64,
        "checkpoint too small for this test"
    );
    disk.fill_leaving(small + (32 << 10));
    fails_for_lack_of_space(&resume_args(data, &run_dir, &[]), "checkpoint.safetensors");
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        saved,
        "the last checkpoint is intact"
    );
    assert!(
        temporaries(&run_dir).is_empty(),
        "{:?}",
        temporaries(&run_dir)
    );

    // With space again, the run continues from epoch 1.
    disk.empty();
    let resumed = ok(&as_strs(&resume_args(data, &run_dir, &[])));
    assert!(
        resumed.contains("resuming") && resumed.contains("after epoch 1"),
        "{resumed}"
    );
    assert_eq!(metric_columns(&run_dir.join("metrics.csv")).len(), 3);
}

#[test]
fn a_batch_the_gpu_cannot_hold_is_one_clear_error_naming_the_adapter() {
    let Some(gpu) = fovea_test_support::gpu_under_test() else {
        return;
    };
    let adapter = gpu.gpu_context().expect("a GPU device").info().name.clone();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("toy");
    make_dataset(&data, 28, 10, 9000, 10);
    let f = Fixture::new(tmp, data, PathBuf::new());
    let root = f.data.parent().unwrap().to_path_buf();
    let mut args = train_args(&f, "unused", &["--epochs", "1"]);
    for (flag, value) in [
        ("--device", "gpu".to_string()),
        ("--batch-size", "9000".to_string()),
        ("--out", root.join("huge").display().to_string()),
    ] {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = value;
    }
    let out = run(&as_strs(&args));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(&adapter),
        "want the adapter `{adapter}` in: {err}"
    );
    assert!(err.contains("--device cpu"), "{err}");
}
