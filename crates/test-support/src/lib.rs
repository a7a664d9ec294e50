//! Fovea's dev-only test support: one copy of every fixture the workspace's tests, examples and
//! benches share.
//!
//! - [`TestDevice`], [`test_device!`] and [`gpu_under_test`]: the devices tests run on, each
//!   device its own `#[test]`, and the one policy for a missing GPU (skip with the reason, or
//!   fail under `FOVEA_REQUIRE_GPU=1`); [`gpu_with_options`]: a private GPU context under the
//!   same policy.
//! - [`golden`]: the golden harness: every case of an op from every golden directory, replayed
//!   on a device, failures naming the case, the tensor and the device.
//! - [`cases`]: the random-case proptest strategies of the property tests and of
//!   `cargo xtask test-kernels`; [`ops`]: "run op X on device d" returning host tensors;
//!   [`check`]: tolerance-checked comparisons and random tensors; [`against_reference`]: one
//!   random case of an op against the reference with its tolerance (every kernel variant's
//!   property tests).
//! - [`lenet`]: the hand-written LeNet training step (device ops, no autograd) of the benches,
//!   the examples and the GPU tests; [`idx`]: synthetic IDX files and dataset specs.
//!
//! A device-generic test is a function of a [`Device`](conv_kernels::Device); `test_device!`
//! turns it into a module with one test per device, so `cargo test conv2d` lists
//! `conv2d_matches_reference::cpu` and `conv2d_matches_reference::gpu` separately:
//!
//! ```
//! use conv_kernels::{Activation, Device};
//! use fovea_test_support::{TestResult, check_close, golden, ops, test_device};
//! use tensor::Tensor;
//!
//! /// relu on `dev` agrees with the reference.
//! fn relu_matches_reference(dev: &Device) -> TestResult {
//!     let x = Tensor::from_vec(&[4], vec![-1.0, 0.0, 0.5, 3.0])?;
//!     let want = ops::activation(&Device::Reference, &x, Activation::Relu)?;
//!     let got = ops::activation(dev, &x, Activation::Relu)?;
//!     // One comparison per element: exact.
//!     check_close(dev, "relu", &got, &want, 0.0, 0.0)
//! }
//! // `relu_matches_reference::cpu` and `relu_matches_reference::gpu`.
//! test_device!(relu_matches_reference: cpu, gpu);
//!
//! /// Every golden `relu` case of every golden directory, within the case's tolerance.
//! fn golden_relu(dev: &Device) -> TestResult {
//!     golden::replay(dev, "relu", |dev, case| -> TestResult {
//!         let y = ops::activation(dev, case.tensor("x")?, Activation::Relu)?;
//!         case.compare("y", &y)?; // the case's tolerance; the error names case and tensor
//!         Ok(())
//!     })
//! }
//! // `golden_relu::reference`, `golden_relu::cpu` and `golden_relu::gpu`.
//! test_device!(golden_relu);
//! # fn main() {
//! #     use fovea_test_support::{TestDevice, run_on};
//! #     run_on(TestDevice::Cpu, relu_matches_reference);
//! #     run_on(TestDevice::Cpu, golden_relu);
//! # }
//! ```
//!
//! Without a GPU adapter a `gpu` test prints why (once per test binary) and passes; with
//! `FOVEA_REQUIRE_GPU=1` it fails. `FOVEA_DEVICE=cpu` skips the GPU without touching a driver
//! (the variable is read only through [`conv_kernels::DeviceKind::from_env`]).
//!
//! `conv-kernels` takes this crate as a dev-dependency only (this crate depends on it).

#![warn(missing_docs)]

pub mod against_reference;
pub mod cases;
pub mod check;
mod device;
pub mod golden;
pub mod idx;
pub mod lenet;
pub mod ops;

pub use check::{TestResult, check_close, max_abs, randn, uniform};
pub use device::{TestDevice, TestOutcome, gpu_under_test, gpu_with_options, run_on};

/// Turns a device-generic test function into one `#[test]` per device.
///
/// `test_device!(name)` expects `fn name(dev: &Device) -> R` in the same module, where `R` is
/// `()` or a `Result` whose error displays (see [`TestOutcome`]), and generates
///
/// ```text
/// mod name {
///     #[test] fn reference() { /* name(&Device::Reference) */ }
///     #[test] fn cpu()       { /* name(&Device::cpu()) */ }
///     #[test] fn gpu()       { /* name(the GPU), or skip: see gpu_under_test */ }
/// }
/// ```
///
/// `test_device!(name: cpu, gpu)` picks the devices (any of `reference`, `cpu`, `gpu`), e.g.
/// for comparisons against the reference that would compare it with itself. A failing body
/// panics with `on <device>: <error>` (see [`run_on`]).
#[macro_export]
macro_rules! test_device {
    ($name:ident) => {
        $crate::test_device!($name: reference, cpu, gpu);
    };
    ($name:ident : $($device:ident),+ $(,)?) => {
        mod $name {
            $(
                #[test]
                pub(super) fn $device() {
                    $crate::run_on($crate::__test_device_kind!($device), super::$name);
                }
            )+
        }
    };
}

/// The [`TestDevice`] named by a `test_device!` device identifier (an implementation detail).
#[doc(hidden)]
#[macro_export]
macro_rules! __test_device_kind {
    (reference) => {
        $crate::TestDevice::Reference
    };
    (cpu) => {
        $crate::TestDevice::Cpu
    };
    (gpu) => {
        $crate::TestDevice::Gpu
    };
}
