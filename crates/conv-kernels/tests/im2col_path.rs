//! The CPU's im2col + GEMM convolution, which AVX-512 CPUs hand to the implicit-GEMM kernels
//! (at every stride for the forward pass and the weight gradient): this test binary forces it (`FOVEA_CPU_CONV=im2col`, read once per process) so that
//! it stays checked against the reference on every machine, as it runs on CPUs without AVX-512.

use conv_kernels::Device;
use fovea_test_support::against_reference::conv_case_matches_reference;
use fovea_test_support::cases::{any_conv_case, proptest_config};
use proptest::prelude::*;

#[test]
fn im2col_convolutions_match_reference() {
    // SAFETY: the only test of this binary sets the variable before any kernel (or other
    // thread) reads the environment.
    unsafe { std::env::set_var("FOVEA_CPU_CONV", "im2col") };
    let dev = Device::cpu();
    proptest!(proptest_config(), |(c in any_conv_case())| {
        conv_case_matches_reference(&dev, &c).map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
}
