//! The flat GPU kernels of matmul, conv2d and pooling reading their operands from storage buffers and
//! through textures (`GpuOperands`), each on a private context that forces the choice whatever
//! the shared context's probe picked: both against the reference over the random cases of
//! `fovea_test_support::cases`, both bit for bit alike on operands spanning several texture rows,
//! and how a context resolves and reports the choice. The storage context also keeps its conv2d
//! and matmul kernels from sharing loads across subgroups (`GpuOptions::subgroups`), the
//! texture context lets them where the adapter can: both ways are checked the same.
//!
//! Without an adapter the GPU tests print why and pass; with `FOVEA_REQUIRE_GPU=1` they fail.
//! `PROPTEST_CASES` sets the case count (12 by default: every case compiles new pipelines).

use conv_kernels::{
    Activation, Conv2dSpec, Device, GpuKernels, GpuOperands, GpuOptions, KernelError, MatmulSpec,
};
use fovea_test_support::against_reference::{
    conv_case_matches_reference, matmul_case_matches_reference,
    pool_activation_case_matches_its_parts, pool_case_matches_reference,
};
use fovea_test_support::cases::{
    ConvCase, MatmulCase, conv_case, lenet_pool_cases, matmul_case, pool_case, proptest_config,
    proptest_config_compiling,
};
use fovea_test_support::ops::{conv2d, matmul, pool2d};
use fovea_test_support::{TestResult, gpu_with_options};
use proptest::prelude::*;
use std::sync::OnceLock;

/// The options of a private context running the flat kernels with `operands`, software
/// adapters allowed, sharing loads across subgroups only when reading through textures.
fn options(operands: GpuOperands) -> GpuOptions {
    GpuOptions {
        allow_software: true,
        kernels: GpuKernels::Flat,
        operands,
        subgroups: operands == GpuOperands::Textures,
        ..Default::default()
    }
}

/// This process's device for `operands` (storage or textures), or `None` (after saying why)
/// without an adapter.
fn gpu(operands: GpuOperands) -> Option<Device> {
    static STORAGE: OnceLock<Option<Device>> = OnceLock::new();
    static TEXTURES: OnceLock<Option<Device>> = OnceLock::new();
    let cell = match operands {
        GpuOperands::Textures => &TEXTURES,
        _ => &STORAGE,
    };
    cell.get_or_init(|| gpu_with_options(&options(operands)))
        .clone()
}

fn fail(e: Box<dyn std::error::Error + Send + Sync>) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

#[test]
fn a_forced_choice_is_kept_and_shown() {
    for choice in [GpuOperands::Storage, GpuOperands::Textures] {
        let Some(dev) = gpu(choice) else { return };
        let ctx = dev.gpu_context().expect("a GPU device");
        // Every adapter wgpu supports has 2D textures at least 8192 texels wide.
        assert_eq!(ctx.operands(), choice, "{}", ctx.info());
        assert_eq!(ctx.info().operands, choice);
        let name = dev.name();
        assert!(
            name.contains(&format!("operands: {}", choice.name())),
            "{name}"
        );
        // Subgroups as asked: never on the storage context; on the texture context exactly
        // where the adapter has them at one fixed size, and then shown.
        let lanes = ctx.subgroup_size();
        assert_eq!(name.contains("subgroups of"), lanes.is_some(), "{name}");
        if choice == GpuOperands::Storage {
            assert_eq!(lanes, None, "{name}");
        } else if ctx.info().name.starts_with("llvmpipe") {
            assert!(lanes.is_some_and(|l| l >= 4), "{name}");
        }
    }
}

#[test]
fn auto_resolves_to_a_choice() {
    let Some(dev) = gpu_with_options(&options(GpuOperands::Auto)) else {
        return;
    };
    let ctx = dev.gpu_context().expect("a GPU device");
    assert_ne!(ctx.operands(), GpuOperands::Auto, "{}", ctx.info());
    if !ctx.is_software() {
        assert_eq!(ctx.operands(), GpuOperands::Storage, "{}", ctx.info());
    }
}

#[test]
fn choices_parse_by_name_and_refuse_others() {
    for (choice, name) in GpuOperands::ALL {
        assert_eq!(GpuOperands::parse(name).ok(), Some(choice));
        assert_eq!(
            GpuOperands::parse(&format!(" {} ", name.to_uppercase())).ok(),
            Some(choice)
        );
        assert_eq!(choice.to_string(), name);
    }
    assert_eq!(GpuOperands::parse("").ok(), Some(GpuOperands::Auto));
    let err = GpuOperands::parse("images").expect_err("an unknown name");
    assert!(matches!(err, KernelError::InvalidSpec { .. }), "{err:?}");
    assert!(err.to_string().contains("textures"), "{err}");
}

/// `trim_pool` drops the operand textures with the cached buffers; the next launches make them
/// again and compute the same bits.
#[test]
fn kernels_after_a_trim_give_the_same_results() -> TestResult {
    let Some(dev) = gpu(GpuOperands::Textures) else {
        return Ok(());
    };
    let c = MatmulCase {
        mkn: (40, 64, 24),
        spec: MatmulSpec::default(),
        bias: false,
        act: None,
        seed: 5,
    };
    let (a, b, _) = c.inputs();
    let before = matmul(&dev, &a, &b, None, &c.spec, None)?;
    dev.gpu_context().expect("a GPU device").trim_pool();
    let after = matmul(&dev, &a, &b, None, &c.spec, None)?;
    same_bits(
        "matmul after trim_pool",
        &[("c", before.data())],
        &[("c", after.data())],
    )
}

/// Runs `check` on every case `strategy` draws, on the device for `operands` (nothing to check
/// without an adapter); `compiling`: each case compiles new pipelines (fewer cases on a GPU).
fn every_case<S>(
    operands: GpuOperands,
    compiling: bool,
    strategy: S,
    check: fn(&Device, &S::Value) -> TestResult,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let Some(dev) = gpu(operands) else {
        return;
    };
    let config = if compiling {
        proptest_config_compiling(&dev)
    } else {
        proptest_config()
    };
    proptest!(config, |(c in strategy)| {
        check(&dev, &c).map_err(fail)?;
    });
}

#[test]
fn storage_matmul_matches_reference() {
    every_case(
        GpuOperands::Storage,
        true,
        matmul_case(),
        matmul_case_matches_reference,
    );
}

#[test]
fn texture_matmul_matches_reference() {
    every_case(
        GpuOperands::Textures,
        true,
        matmul_case(),
        matmul_case_matches_reference,
    );
}

#[test]
fn storage_conv2d_matches_reference() {
    every_case(
        GpuOperands::Storage,
        true,
        conv_case(),
        conv_case_matches_reference,
    );
}

#[test]
fn texture_conv2d_matches_reference() {
    every_case(
        GpuOperands::Textures,
        true,
        conv_case(),
        conv_case_matches_reference,
    );
}

#[test]
fn storage_pool2d_matches_reference() {
    every_case(
        GpuOperands::Storage,
        false,
        pool_case(),
        pool_case_matches_reference,
    );
}

#[test]
fn texture_pool2d_matches_reference() {
    every_case(
        GpuOperands::Textures,
        false,
        pool_case(),
        pool_case_matches_reference,
    );
}

/// Whether two result lists are equal bit for bit, naming the first that differs.
fn same_bits(what: &str, a: &[(&str, &[f32])], b: &[(&str, &[f32])]) -> TestResult {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        let same = x.len() == y.len() && x.iter().zip(*y).all(|(p, q)| p.to_bits() == q.to_bits());
        if !same {
            return Err(format!("{what}: {name} differs between the two contexts").into());
        }
    }
    Ok(())
}

/// Operands longer than one texture row (4,096 texels, 16,384 floats) and not whole rows: the
/// copy into the texture then takes the whole rows and the rest separately. Both choices match
/// the reference and each other bit for bit (the same values loaded, the same arithmetic).
#[test]
fn operands_over_several_texture_rows_match_storage_bit_for_bit() -> TestResult {
    let (Some(storage), Some(textures)) = (gpu(GpuOperands::Storage), gpu(GpuOperands::Textures))
    else {
        return Ok(());
    };
    let conv_cases = [
        // x: 8 × 3 × 32 × 32 = 24,576 floats, rows of whole vec4s (the aligned reads).
        (8, 3, 6, [32, 32], [5, 5], [2, 2], [1, 1]),
        // x: 5 × 4 × 30 × 31 = 18,600 floats, odd rows (the covering reads), grad_y alike.
        (5, 4, 7, [30, 31], [3, 3], [1, 1], [1, 1]),
        // The weight, 40 × 48 × 5 × 5 = 48,000 floats, too large for a uniform binding: the
        // forward and the input gradient read it through a texture (3 rows, the last partial).
        (2, 48, 40, [9, 10], [5, 5], [2, 2], [1, 1]),
        // The same at stride 2, where the input gradient reads the weight one value at a time.
        (2, 40, 48, [11, 11], [5, 5], [1, 1], [2, 2]),
    ];
    for (i, (n, c_in, c_out, hw, k, padding, stride)) in conv_cases.into_iter().enumerate() {
        let c = ConvCase {
            n,
            c_in,
            c_out,
            hw,
            k,
            spec: Conv2dSpec {
                padding,
                stride,
                ..Conv2dSpec::default()
            },
            bias: true,
            act: Some(Activation::Relu),
            seed: 40 + i as u64,
        };
        conv_case_matches_reference(&textures, &c)?;
        let t = c.inputs()?;
        let run = |dev: &Device| conv2d(dev, &t.x, &t.w, t.b.as_ref(), &t.grad_y, &c.spec, c.act);
        let (a, b) = (run(&storage)?, run(&textures)?);
        same_bits(
            &format!("conv case {i}"),
            &[
                ("y", a.y.data()),
                ("grad_x", a.grad_x.data()),
                ("grad_w", a.grad_w.data()),
                (
                    "grad_b",
                    a.grad_b.as_ref().ok_or("no bias gradient")?.data(),
                ),
            ],
            &[
                ("y", b.y.data()),
                ("grad_x", b.grad_x.data()),
                ("grad_w", b.grad_w.data()),
                (
                    "grad_b",
                    b.grad_b.as_ref().ok_or("no bias gradient")?.data(),
                ),
            ],
        )?;
    }
    // LeNet's poolings at batch 64 (pool1's input 64 × 6 × 28 × 28 = 301,056 floats, 19 texture
    // rows; pool2's rows of 10, read in vec2s), plain and through the activation before them.
    for (c, act) in lenet_pool_cases(64) {
        pool_case_matches_reference(&textures, &c)?;
        pool_activation_case_matches_its_parts(&textures, &c, act)?;
        let (x, gy) = c.inputs()?;
        let (a, b) = (
            pool2d(&storage, &x, &gy, &c.spec())?,
            pool2d(&textures, &x, &gy, &c.spec())?,
        );
        same_bits(
            &format!("{:?} pool of {:?}", c.kind, c.hw),
            &[("y", a.y.data()), ("grad_x", a.grad_x.data())],
            &[("y", b.y.data()), ("grad_x", b.grad_x.data())],
        )?;
    }
    // A: 132 × 200 = 26,400 floats; B: 200 × 96; every transpose.
    for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
        let c = MatmulCase {
            mkn: (132, 200, 96),
            spec: MatmulSpec { trans_a, trans_b },
            bias: true,
            act: None,
            seed: 7,
        };
        matmul_case_matches_reference(&textures, &c)?;
        let (x, y, bias) = c.inputs();
        let run = |dev: &Device| matmul(dev, &x, &y, bias.as_ref(), &c.spec, c.act);
        let (a, b) = (run(&storage)?, run(&textures)?);
        same_bits(
            &format!("matmul {trans_a} {trans_b}"),
            &[("c", a.data())],
            &[("c", b.data())],
        )?;
    }
    Ok(())
}
