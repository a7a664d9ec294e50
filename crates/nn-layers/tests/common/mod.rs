//! Shared test helpers: the devices every device-generic test body runs on (the single place to
//! add one).

#![allow(dead_code)] // each test binary uses a different subset

use conv_kernels::Device;

/// Every device the tests run on: the fast CPU backend, the naive reference, and the GPU when
/// one exists (see `conv_kernels::testing` for the policy when it does not).
pub fn devices() -> Vec<Device> {
    let mut d = vec![Device::Reference];
    d.extend(conv_kernels::testing::devices_under_test());
    d
}

/// Runs `body` on every device, naming the device in the failure.
pub fn for_each_device(body: impl Fn(&Device) -> Result<(), Box<dyn std::error::Error>>) {
    for dev in devices() {
        if let Err(e) = body(&dev) {
            panic!("on {}: {e}", dev.name());
        }
    }
}
