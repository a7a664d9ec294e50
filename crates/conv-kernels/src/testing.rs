//! Test support shared by every crate's test suite (feature `testing`): the devices device-generic
//! tests run on, with one policy for when a GPU is missing.
//!
//! Without a GPU adapter the GPU is skipped with a reason printed once to stderr, unless
//! `FOVEA_REQUIRE_GPU=1` (CI sets it when a Vulkan driver is installed), where a missing GPU
//! fails the test. `FOVEA_DEVICE=cpu` skips the GPU without touching any driver.

use crate::Device;
use std::io::Write;
use std::sync::{Once, OnceLock};

/// The shared GPU device of this test process (software adapters such as llvmpipe included),
/// or `None` after printing why. Panics when `FOVEA_REQUIRE_GPU=1` and there is no GPU.
pub fn gpu_under_test() -> Option<Device> {
    static GPU: OnceLock<Result<Device, String>> = OnceLock::new();
    let required = std::env::var("FOVEA_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let got = GPU.get_or_init(|| {
        if matches!(
            crate::DeviceKind::from_env(),
            Some(Ok(crate::DeviceKind::Cpu))
        ) {
            return Err("FOVEA_DEVICE=cpu".to_string());
        }
        Device::gpu().map_err(|e| e.to_string())
    });
    match got {
        Ok(d) => Some(d.clone()),
        Err(e) if required => panic!("FOVEA_REQUIRE_GPU=1 but no GPU device: {e}"),
        Err(e) => {
            static SAID: Once = Once::new();
            // Straight to stderr: the test harness captures `eprintln!`.
            SAID.call_once(|| {
                let _ = writeln!(std::io::stderr(), "skipping GPU tests: {e}");
            });
            None
        }
    }
}

/// The fast CPU backend plus the GPU when there is one: the backends tests compare against the
/// reference.
pub fn devices_under_test() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu_under_test());
    d
}
