//! test-support's own tests: `test_device!` makes one test per device and names the device in
//! failures; the golden harness reads every directory, a directory without an op is fine, and
//! an op with no case anywhere fails.

use conv_kernels::Device;
use fovea_test_support::golden::{self, GoldenCase};
use fovea_test_support::lenet::{Arch, HandNet};
use fovea_test_support::{TestDevice, TestResult, run_on, test_device};
use std::path::{Path, PathBuf};
use tensor::{NamedTensors, SeededRng, Tensor};

/// The body of the per-device tests below: every device runs (the GPU when there is one).
fn runs_on_its_device(dev: &Device) -> TestResult {
    let y = dev.to_host(&dev.full(&[2], 1.5)?)?;
    assert_eq!(y.data(), &[1.5, 1.5]);
    Ok(())
}
test_device!(runs_on_its_device);

fn returns_unit(dev: &Device) {
    assert!(!dev.name().is_empty());
}
test_device!(returns_unit: reference, cpu);

#[test]
fn the_macro_makes_one_test_per_device() {
    // Each generated test is an ordinary function of its module.
    let tests: [fn(); 3] = [
        runs_on_its_device::reference,
        runs_on_its_device::cpu,
        runs_on_its_device::gpu,
    ];
    for t in tests {
        t();
    }
    returns_unit::reference();
    returns_unit::cpu();
}

#[test]
fn a_failure_names_the_device() {
    let err = std::panic::catch_unwind(|| {
        run_on(TestDevice::Cpu, |_| -> TestResult { Err("boom".into()) })
    })
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(msg, "on cpu: boom");
}

#[test]
fn test_devices_are_named_as_device_kinds() {
    let names: Vec<_> = TestDevice::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(names, ["reference", "cpu", "gpu"]);
    assert!(matches!(
        TestDevice::Reference.open(),
        Some(Device::Reference)
    ));
    assert!(matches!(TestDevice::Cpu.open(), Some(Device::Cpu(_))));
}

// ---- the golden harness over synthetic directories ----

fn write_dir(dir: &Path, cases: &[(&str, &str)]) {
    let entries: Vec<String> = cases
        .iter()
        .map(|(name, op)| {
            format!(
                r#"{{"name": "{name}", "op": "{op}", "inputs": ["x"], "outputs": ["y"],
                    "shapes": {{"x": [3], "y": [3]}}, "tolerance": {{"rtol": 0.001, "atol": 0.0001}}}}"#
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"format": 1, "made_with": "test", "cases": [{}]}}"#,
        entries.join(",")
    );
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    let x = Tensor::from_vec(&[3], vec![-1.0, 0.0, 2.0]).unwrap();
    let y = x.map(|v| v.max(0.0));
    for (name, _) in cases {
        let mut set = NamedTensors::new();
        set.insert("x", &x).unwrap();
        set.insert("y", &y).unwrap();
        set.write(dir.join(format!("{name}.safetensors"))).unwrap();
    }
}

fn two_dirs() -> (tempfile::TempDir, tempfile::TempDir, Vec<PathBuf>) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_dir(a.path(), &[("relu_a", "relu"), ("cat_a", "cat")]);
    write_dir(b.path(), &[("relu_b", "relu")]);
    let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    (a, b, dirs)
}

#[test]
fn cases_come_from_every_directory_in_order() {
    let (_a, _b, dirs) = two_dirs();
    let names =
        |cases: Vec<GoldenCase>| -> Vec<String> { cases.into_iter().map(|c| c.name).collect() };
    assert_eq!(
        names(golden::cases_in(&dirs, "relu").unwrap()),
        ["relu_a", "relu_b"]
    );
    // The second directory has no `cat` case: no error, the first one's is found.
    assert_eq!(names(golden::cases_in(&dirs, "cat").unwrap()), ["cat_a"]);
}

#[test]
fn an_op_without_any_case_fails_rather_than_passing_vacuously() {
    let (_a, _b, dirs) = two_dirs();
    let err = golden::cases_in(&dirs, "tanh").unwrap_err().to_string();
    assert!(err.contains("no `tanh` golden cases"), "{err}");
    assert!(err.contains("FOVEA_GOLDEN_DIR"), "{err}");
    assert!(golden::cases("no_such_op").is_err());
}

#[test]
fn a_replay_failure_names_the_case_the_directory_the_tensor_and_the_device() {
    let dev = Device::cpu();
    let err = golden::replay(&dev, "relu", |_, case| {
        let wrong = case.tensor("y")?.map(|v| v + 1.0);
        case.compare("y", &wrong)
    })
    .unwrap_err()
    .to_string();
    let case = golden::cases("relu").unwrap().remove(0);
    assert!(
        err.contains(&format!("golden case `{}`", case.name)),
        "{err}"
    );
    assert!(err.contains(&case.dir.display().to_string()), "{err}");
    assert!(err.contains("`y`") && err.contains("on cpu"), "{err}");
}

#[test]
fn the_hand_written_step_trains_and_checks_its_parameters() -> TestResult {
    let dev = Device::cpu();
    let arch = Arch::seed_lenet();
    let shapes: Vec<_> = arch.param_shapes().into_iter().map(|(d, _)| d).collect();
    assert_eq!(shapes[4], [120, 400]);
    assert_eq!(shapes.len(), 10);
    let mut net = HandNet::new(&dev, arch.clone(), &mut SeededRng::new(0))?;
    let (x, labels) = net.random_batch(8, &mut SeededRng::new(1))?;
    let first = net.train_step(&x, &labels, 0.5)?;
    let mut laps = Vec::new();
    let out = net.step_timed(&x, &labels, 0.5, &mut |name| {
        laps.push(name.to_string());
        Ok(())
    })?;
    assert!(dev.read_scalar(&out.loss)?.is_finite() && first.is_finite());
    assert_eq!(laps.first().map(String::as_str), Some("conv1 fwd"));
    assert_eq!(laps.last().map(String::as_str), Some("sgd"));
    let wrong = net.params()[..9].to_vec();
    assert!(HandNet::from_params(&dev, arch, wrong).is_err());
    Ok(())
}
