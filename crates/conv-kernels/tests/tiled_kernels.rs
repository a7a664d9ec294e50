//! The tiled (workgroup-memory) GPU kernels of matmul and conv2d against the reference, on a
//! private context that runs them whatever the adapter (`GpuKernels::Tiled`: llvmpipe included,
//! where `Auto` would pick the flat kernels), over the random cases of
//! `fovea_test_support::cases` plus fixed edge cases (sizes 1, tile multiples and one past
//! them, several weight-gradient chunks); and how contexts choose their kernels.
//!
//! Without an adapter the GPU tests print why and pass; with `FOVEA_REQUIRE_GPU=1` they fail.
//! `PROPTEST_CASES` sets the case count (12 by default: every case compiles new pipelines, and
//! llvmpipe runs barriers slowly).

use conv_kernels::{
    Activation, Conv2dSpec, Device, GpuContext, GpuKernels, GpuOptions, KernelError, MatmulSpec,
};
use fovea_test_support::against_reference::{
    conv_case_matches_reference, matmul_case_matches_reference,
};
use fovea_test_support::cases::{
    ConvCase, MatmulCase, conv_case, matmul_case, proptest_config_compiling,
    single_channel_conv_case,
};
use fovea_test_support::ops::conv2d;
use fovea_test_support::{TestResult, gpu_with_options};
use proptest::prelude::*;
use std::sync::OnceLock;

/// The options of a private context running `kernels`, software adapters allowed.
fn options(kernels: GpuKernels) -> GpuOptions {
    GpuOptions {
        allow_software: true,
        kernels,
        ..Default::default()
    }
}

/// This process's tiled-kernel GPU device, or `None` (after saying why) without an adapter.
fn tiled_gpu() -> Option<Device> {
    static DEV: OnceLock<Option<Device>> = OnceLock::new();
    DEV.get_or_init(|| gpu_with_options(&options(GpuKernels::Tiled)))
        .clone()
}

fn fail(e: Box<dyn std::error::Error + Send + Sync>) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

#[test]
fn a_tiled_context_runs_and_describes_tiled_kernels() {
    let Some(dev) = tiled_gpu() else { return };
    let ctx = dev.gpu_context().expect("a GPU device");
    assert_eq!(ctx.kernels(), GpuKernels::Tiled);
    assert_eq!(ctx.info().kernels, GpuKernels::Tiled);
    let name = dev.name();
    assert!(name.contains("kernels: tiled (workgroup memory)"), "{name}");
}

#[test]
fn auto_resolves_to_flat_on_llvmpipe_and_tiled_on_hardware() {
    let Some(dev) = gpu_with_options(&options(GpuKernels::Auto)) else {
        return;
    };
    let ctx = dev.gpu_context().expect("a GPU device");
    if ctx.is_software() {
        assert_eq!(ctx.kernels(), GpuKernels::Flat, "{}", ctx.info());
        assert!(
            ctx.info()
                .to_string()
                .contains("kernels: flat (barrier-free)")
        );
    } else {
        assert_eq!(ctx.kernels(), GpuKernels::Tiled, "{}", ctx.info());
    }
    // An explicit choice is kept on any adapter.
    let Some(flat) = gpu_with_options(&options(GpuKernels::Flat)) else {
        return;
    };
    let ctx = flat.gpu_context().expect("a GPU device");
    assert_eq!(ctx.kernels(), GpuKernels::Flat);
}

#[test]
fn tiled_matmul_matches_reference() {
    let Some(dev) = tiled_gpu() else { return };
    proptest!(proptest_config_compiling(&dev), |(c in matmul_case())| {
        matmul_case_matches_reference(&dev, &c).map_err(fail)?;
    });
}

#[test]
fn tiled_matmul_edge_sizes_match_reference() -> TestResult {
    let Some(dev) = tiled_gpu() else {
        return Ok(());
    };
    // Sizes 1, exact tiles (64, K-tile 16), one past them, and long thin products.
    let sizes = [
        (1, 1, 1),
        (1, 17, 1),
        (64, 16, 64),
        (65, 17, 129),
        (3, 200, 2),
        (130, 1, 70),
    ];
    for (i, &mkn) in sizes.iter().enumerate() {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            for bias in [false, true] {
                let c = MatmulCase {
                    mkn,
                    spec: MatmulSpec { trans_a, trans_b },
                    bias,
                    // The fused epilogue too, ReLU included (forward only here).
                    act: bias.then_some(Activation::Relu),
                    seed: i as u64,
                };
                matmul_case_matches_reference(&dev, &c)?;
            }
        }
    }
    Ok(())
}

#[test]
fn tiled_conv2d_matches_reference() {
    let Some(dev) = tiled_gpu() else { return };
    proptest!(proptest_config_compiling(&dev), |(c in conv_case())| {
        conv_case_matches_reference(&dev, &c).map_err(fail)?;
    });
}

#[test]
fn tiled_conv2d_single_input_channel_matches_reference() {
    let Some(dev) = tiled_gpu() else { return };
    proptest!(proptest_config_compiling(&dev), |(c in single_channel_conv_case())| {
        conv_case_matches_reference(&dev, &c).map_err(fail)?;
    });
}

/// Convolutions spanning several tiles in every GEMM dimension: more than 64 output channels
/// per group, several K-tiles, several weight-gradient chunks, groups, stride, dilation.
#[test]
fn tiled_conv2d_multi_tile_cases_match_reference() -> TestResult {
    let Some(dev) = tiled_gpu() else {
        return Ok(());
    };
    let case = |n, c_in, c_out, hw, k, stride, padding, dilation, groups| ConvCase {
        n,
        c_in,
        c_out,
        hw,
        k,
        spec: Conv2dSpec {
            stride,
            padding,
            dilation,
            groups,
        },
        bias: true,
        act: Some(Activation::Tanh),
        seed: 11,
    };
    for c in [
        // 70 output channels (2 row tiles), 1600 positions (several chunks), K = 72.
        case(4, 8, 70, [20, 20], [3, 3], [1, 1], [1, 1], [1, 1], 1),
        // Two groups of 65 output channels and 3 input channels, stride 2, dilation 2.
        case(3, 6, 130, [17, 19], [3, 2], [2, 2], [2, 1], [2, 2], 2),
        // A 1×1 convolution with wide rows, stride 3 (most input positions get no gradient).
        case(2, 5, 3, [9, 40], [1, 1], [3, 3], [0, 0], [1, 1], 1),
    ] {
        conv_case_matches_reference(&dev, &c)?;
    }
    Ok(())
}

#[test]
fn tiled_results_are_deterministic() -> TestResult {
    let Some(dev) = tiled_gpu() else {
        return Ok(());
    };
    let c = ConvCase {
        n: 5,
        c_in: 4,
        c_out: 6,
        hw: [20, 20],
        k: [5, 5],
        spec: Conv2dSpec {
            padding: [2, 2],
            ..Conv2dSpec::default()
        },
        bias: true,
        act: None,
        seed: 3,
    };
    let t = c.inputs()?;
    let run = || conv2d(&dev, &t.x, &t.w, t.b.as_ref(), &t.grad_y, &c.spec, c.act);
    let (a, b) = (run()?, run()?);
    for (name, x, y) in [
        ("y", &a.y, &b.y),
        ("grad_x", &a.grad_x, &b.grad_x),
        ("grad_w", &a.grad_w, &b.grad_w),
    ] {
        let same = x
            .data()
            .iter()
            .zip(y.data())
            .all(|(p, q)| p.to_bits() == q.to_bits());
        if !same {
            return Err(format!("conv2d {name} differs between two identical runs").into());
        }
    }
    Ok(())
}

/// Set in the child process of the environment-variable test.
const CHILD: &str = "FOVEA_TILED_KERNELS_TEST_CHILD";

/// In the child process only: a bad `FOVEA_GPU_KERNELS` is an error from the shared context
/// (before any adapter is probed), and `Device::auto` falls back to the CPU saying why.
#[test]
fn child_bad_kernels_variable() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let err = GpuContext::shared(true).expect_err("FOVEA_GPU_KERNELS=fastest is refused");
    assert!(matches!(err, KernelError::InvalidSpec { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("FOVEA_GPU_KERNELS") && msg.contains("fastest") && msg.contains("tiled"),
        "{msg}"
    );
    let auto = Device::auto();
    assert!(!auto.device.is_gpu(), "{}", auto.reason);
    assert!(auto.reason.contains("FOVEA_GPU_KERNELS"), "{}", auto.reason);
}

#[test]
fn a_bad_kernels_variable_is_an_error_not_a_panic() -> TestResult {
    if std::env::var_os(CHILD).is_some() {
        return Ok(());
    }
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "child_bad_kernels_variable", "--test-threads=1"])
        .env(CHILD, "1")
        .env("FOVEA_GPU_KERNELS", "fastest")
        .env_remove("FOVEA_DEVICE")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !text.contains("1 passed") {
        return Err(format!("child test failed or did not run:\n{text}").into());
    }
    Ok(())
}
