//! The CPU's kernels in AVX2 + FMA intrinsics (the convolutions' register tiles, the sigmoid,
//! the 2×2 pooling rows), which AVX-512 CPUs would not run: this test binary keeps them on AVX2
//! (`FOVEA_CPU_ISA=avx2`, read once per process) so that they stay checked against the
//! reference on every x86 machine, as they run on CPUs without AVX-512.

use conv_kernels::Device;
use fovea_test_support::against_reference::{
    activation_case_matches_reference, conv_case_matches_reference, pool_case_matches_reference,
};
use fovea_test_support::cases::{activation_case, any_conv_case, pool_case, proptest_config};
use proptest::prelude::*;

#[test]
fn avx2_kernels_match_reference() {
    #[cfg(target_arch = "x86_64")]
    if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
    {
        eprintln!("this CPU has no AVX2 + FMA: the tiles cannot run here");
        return;
    }
    // SAFETY: the only test of this binary sets the variable before any kernel (or other
    // thread) reads the environment.
    unsafe { std::env::set_var("FOVEA_CPU_ISA", "avx2") };
    let dev = Device::cpu();
    proptest!(proptest_config(), |(c in any_conv_case())| {
        conv_case_matches_reference(&dev, &c).map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
    proptest!(proptest_config(), |(c in activation_case())| {
        activation_case_matches_reference(&dev, &c)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
    proptest!(proptest_config(), |(c in pool_case())| {
        pool_case_matches_reference(&dev, &c).map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
}
