//! The devices tests run on, with one policy for when a GPU is missing.

use conv_kernels::{Device, DeviceKind, GpuContext, GpuOptions};
use std::fmt::Display;
use std::io::Write;
use std::sync::Arc;
use std::sync::{Once, OnceLock};

/// A device a test runs on; [`test_device!`](crate::test_device) makes one `#[test]` of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestDevice {
    /// The naive reference kernels (the oracle).
    Reference,
    /// The fast CPU backend.
    Cpu,
    /// The GPU (software adapters such as llvmpipe included), when there is one.
    Gpu,
}

impl TestDevice {
    /// Every device, reference first: the list to extend when a backend is added.
    pub const ALL: [TestDevice; 3] = [TestDevice::Reference, TestDevice::Cpu, TestDevice::Gpu];

    /// The device's name as `--device` spells it (`reference`, `cpu`, `gpu`).
    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    /// The [`DeviceKind`] of this device.
    pub fn kind(self) -> DeviceKind {
        match self {
            TestDevice::Reference => DeviceKind::Reference,
            TestDevice::Cpu => DeviceKind::Cpu,
            TestDevice::Gpu => DeviceKind::Gpu,
        }
    }

    /// The device, or `None` for a GPU that is not there (see [`gpu_under_test`]).
    pub fn open(self) -> Option<Device> {
        match self {
            TestDevice::Reference => Some(Device::Reference),
            TestDevice::Cpu => Some(Device::cpu()),
            TestDevice::Gpu => gpu_under_test(),
        }
    }
}

/// True when `FOVEA_REQUIRE_GPU=1`: a missing GPU fails the test instead of skipping it.
fn gpu_required() -> bool {
    std::env::var("FOVEA_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The shared GPU device of this test process (software adapters such as llvmpipe included),
/// or `None` after printing why (once per process, straight to stderr so the harness does
/// not hide it). Panics when `FOVEA_REQUIRE_GPU=1` and there is no GPU. `FOVEA_DEVICE=cpu`
/// skips the GPU without touching any driver.
pub fn gpu_under_test() -> Option<Device> {
    static GPU: OnceLock<Result<Device, String>> = OnceLock::new();
    let got = GPU.get_or_init(|| {
        if matches!(DeviceKind::from_env(), Some(Ok(DeviceKind::Cpu))) {
            return Err("FOVEA_DEVICE=cpu".to_string());
        }
        Device::gpu().map_err(|e| e.to_string())
    });
    match got {
        Ok(d) => Some(d.clone()),
        Err(e) if gpu_required() => panic!("FOVEA_REQUIRE_GPU=1 but no GPU device: {e}"),
        Err(e) => {
            static SAID: Once = Once::new();
            // Straight to stderr: the test harness captures `eprintln!`.
            SAID.call_once(|| {
                let _ = writeln!(std::io::stderr(), "skipping GPU tests: {e}");
            });
            // Captured: shown with `--nocapture`, next to the test's name.
            eprintln!("skipped: no GPU ({e})");
            None
        }
    }
}

/// A GPU device with a context of its own, opened with `opts` (for tests of context options
/// such as [`GpuOptions::kernels`]), or `None` after printing why: the policy of
/// [`gpu_under_test`] (`FOVEA_DEVICE=cpu` skips without touching a driver; a missing GPU
/// panics when `FOVEA_REQUIRE_GPU=1`).
pub fn gpu_with_options(opts: &GpuOptions) -> Option<Device> {
    let got = if matches!(DeviceKind::from_env(), Some(Ok(DeviceKind::Cpu))) {
        Err("FOVEA_DEVICE=cpu".to_string())
    } else {
        GpuContext::new(opts)
            .map(|ctx| Device::Gpu(Arc::new(ctx)))
            .map_err(|e| e.to_string())
    };
    match got {
        Ok(d) => Some(d),
        Err(e) if gpu_required() => panic!("FOVEA_REQUIRE_GPU=1 but no GPU device: {e}"),
        Err(e) => {
            // Straight to stderr: the test harness captures `eprintln!`.
            let _ = writeln!(std::io::stderr(), "skipping GPU tests: {e}");
            None
        }
    }
}

/// What a test body returns: `()` (it panics on failure) or a `Result` whose error displays.
pub trait TestOutcome {
    /// The failure message, if the body failed.
    fn into_failure(self) -> Option<String>;
}

impl TestOutcome for () {
    fn into_failure(self) -> Option<String> {
        None
    }
}

impl<E: Display> TestOutcome for Result<(), E> {
    fn into_failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// Runs `body` on `device`, panicking with `on <device>: <error>` when it fails; a missing GPU
/// is skipped (or fails) as [`gpu_under_test`] says. [`test_device!`](crate::test_device)
/// calls this once per device.
pub fn run_on<R: TestOutcome>(device: TestDevice, body: impl FnOnce(&Device) -> R) {
    let Some(dev) = device.open() else {
        return;
    };
    if let Some(e) = body(&dev).into_failure() {
        panic!("on {}: {e}", dev.name());
    }
}
