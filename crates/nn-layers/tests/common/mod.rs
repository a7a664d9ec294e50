//! Shared test helpers: the devices every device-generic test body runs on (the single place to
//! add one).

#![allow(dead_code)] // each test binary uses a different subset

use conv_kernels::Device;

/// Every device the tests run on: the fast CPU backend, the naive reference, and the GPU when
/// one exists (software adapters included). Without a GPU it prints why once and skips it,
/// unless `FOVEA_REQUIRE_GPU=1`, where a missing GPU fails; `FOVEA_DEVICE=cpu` skips it.
pub fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu(), Device::Reference];
    d.extend(gpu());
    d
}

/// The shared GPU device, or `None` (with the reason printed once) when there is none.
pub fn gpu() -> Option<Device> {
    static GPU: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
    let required = std::env::var("FOVEA_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let got = GPU.get_or_init(|| {
        if std::env::var("FOVEA_DEVICE").is_ok_and(|v| v.eq_ignore_ascii_case("cpu")) {
            return Err("FOVEA_DEVICE=cpu".to_string());
        }
        Device::gpu().map_err(|e| e.to_string())
    });
    match got {
        Ok(d) => Some(d.clone()),
        Err(e) if required => panic!("FOVEA_REQUIRE_GPU=1 but no GPU device: {e}"),
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("skipping GPU tests: {e}"));
            None
        }
    }
}

/// Runs `body` on every device, naming the device in the failure.
pub fn for_each_device(body: impl Fn(&Device) -> Result<(), Box<dyn std::error::Error>>) {
    for dev in devices() {
        if let Err(e) = body(&dev) {
            panic!("on {}: {e}", dev.name());
        }
    }
}
