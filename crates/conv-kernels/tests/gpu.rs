//! GPU-specific behaviour: tensors stay on the device (pool and transfer counters), copy-on-write
//! of shared buffers, device mixing errors, size limits and device selection. The kernels
//! themselves are checked by the shared suites (`fast_vs_reference`, `golden`, ...), which run on
//! the GPU through `common::devices_under_test`.
//!
//! Without an adapter these tests print why and pass; with `FOVEA_REQUIRE_GPU=1` they fail.

mod common;

use common::TestResult;
use conv_kernels::testing::gpu_under_test;
use conv_kernels::{
    Activation, Conv2dSpec, Device, GpuContext, GpuOptions, KernelError, Pool2dSpec, PoolKind,
    SgdConfig,
};
use std::sync::Arc;
use tensor::{SeededRng, Tensor};

/// The shared GPU device, or `None` (after printing why) when there is none.
fn gpu() -> Option<Device> {
    gpu_under_test()
}

/// A private context, so counters are not disturbed by tests running in parallel.
fn private_gpu() -> Option<Device> {
    gpu()?;
    let opts = GpuOptions {
        allow_software: true,
        ..GpuOptions::default()
    };
    GpuContext::new(&opts)
        .ok()
        .map(|c| Device::Gpu(Arc::new(c)))
}

/// A small conv → sigmoid → avg-pool → linear → cross-entropy step with SGD, returning the loss
/// and correct-count device scalars.
fn small_step(
    dev: &Device,
    params: &mut [conv_kernels::DeviceTensor],
    x: &conv_kernels::DeviceTensor,
    labels: &conv_kernels::IndexTensor,
) -> TestResult<(conv_kernels::DeviceTensor, conv_kernels::DeviceTensor)> {
    let n = x.dims()[0];
    let conv = Conv2dSpec::new(1, 2);
    let pool = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0);
    let a = dev.conv2d(x, &params[0], Some(&params[1]), &conv)?;
    let s = dev.activation(&a, Activation::Sigmoid)?;
    let q = dev.pool2d(&s, &pool)?.output;
    let f = q.reshape(&[n, 4 * 6 * 6])?;
    let logits = dev.linear(&f, &params[2], Some(&params[3]))?;
    let ce = dev.softmax_cross_entropy(&logits, labels, true)?;
    let lin = dev.linear_backward(
        &f,
        &params[2],
        ce.grad_logits.as_ref().ok_or("no logits gradient")?,
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: true,
        },
    )?;
    let gq = lin
        .input
        .as_ref()
        .ok_or("no input gradient")?
        .reshape(q.dims())?;
    let gs = dev.pool2d_backward(s.dims(), &gq, None, &pool)?;
    let ga = dev.activation_backward(&s, &gs, Activation::Sigmoid)?;
    let cg = dev.conv2d_backward(
        x,
        &params[0],
        &ga,
        &conv,
        conv_kernels::GradsWanted {
            input: false,
            weight: true,
            bias: true,
        },
    )?;
    let grads = [
        cg.weight.ok_or("no weight gradient")?,
        cg.bias.ok_or("conv bias grad")?,
        lin.weight.ok_or("no weight gradient")?,
        lin.bias.ok_or("linear bias grad")?,
    ];
    let cfg = SgdConfig::plain(0.05);
    for (p, g) in params.iter_mut().zip(&grads) {
        dev.sgd_step(&cfg, p, g, None)?;
    }
    Ok((ce.loss, ce.correct))
}

#[test]
fn training_steps_reuse_buffers_and_read_back_only_scalars() -> TestResult {
    let Some(dev) = private_gpu() else {
        return Ok(());
    };
    let mut rng = SeededRng::new(7);
    let x = dev.upload(&Tensor::randn(&[8, 1, 12, 12], &mut rng)?)?;
    let labels = dev.upload_indices(&[0, 1, 2, 3, 4, 0, 1, 2])?;
    let mut params = Vec::new();
    for dims in [&[4, 1, 5, 5][..], &[4], &[5, 144], &[5]] {
        params.push(dev.upload(&Tensor::rand_uniform(dims, -0.3, 0.3, &mut rng)?)?);
    }
    let mut losses = Vec::new();
    {
        // Warm-up step: pipelines compiled, pool filled (its scalars dropped, as in a loop).
        let (l, c) = small_step(&dev, &mut params, &x, &labels)?;
        losses.push(dev.read_scalar(&l)?);
        dev.read_scalar(&c)?;
    }
    let (pool0, xfer0) = (dev.pool_stats().ok_or("pool stats")?, dev.transfer_stats());
    let steps = 4;
    for _ in 0..steps {
        let (l, c) = small_step(&dev, &mut params, &x, &labels)?;
        losses.push(dev.read_scalar(&l)?);
        let correct = dev.read_scalar(&c)?;
        assert!((0.0..=8.0).contains(&correct), "correct count {correct}");
    }
    let (pool1, xfer1) = (dev.pool_stats().ok_or("pool stats")?, dev.transfer_stats());
    assert_eq!(
        pool1.bytes_allocated, pool0.bytes_allocated,
        "GPU memory grew across identical steps: {pool0:?} -> {pool1:?}"
    );
    assert_eq!(pool1.misses, pool0.misses, "{pool0:?} -> {pool1:?}");
    assert!(pool1.hits > pool0.hits);
    assert_eq!(pool1.live_buffers, pool0.live_buffers);
    assert_eq!(xfer1.uploads, xfer0.uploads, "no uploads inside the loop");
    assert_eq!(
        xfer1.downloads - xfer0.downloads,
        2 * steps,
        "two scalars per step"
    );
    assert_eq!(xfer1.download_bytes - xfer0.download_bytes, 8 * steps);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(
        losses[steps as usize] < losses[0],
        "loss did not fall: {losses:?}"
    );
    Ok(())
}

#[test]
fn gpu_matches_cpu_over_training_steps() -> TestResult {
    let Some(dev) = gpu() else {
        return Ok(());
    };
    let cpu = Device::cpu();
    let mut rng = SeededRng::new(3);
    let x = Tensor::randn(&[4, 1, 12, 12], &mut rng)?;
    let labels = [3, 1, 4, 1];
    let mut host_params = Vec::new();
    for dims in [&[4, 1, 5, 5][..], &[4], &[5, 144], &[5]] {
        host_params.push(Tensor::rand_uniform(dims, -0.3, 0.3, &mut rng)?);
    }
    let mut finals = Vec::new();
    for d in [&cpu, &dev] {
        let mut params: Vec<_> = host_params
            .iter()
            .map(|t| d.upload(t))
            .collect::<Result<_, _>>()?;
        let (xd, ld) = (d.upload(&x)?, d.upload_indices(&labels)?);
        for _ in 0..3 {
            small_step(d, &mut params, &xd, &ld)?;
        }
        finals.push(
            params
                .iter()
                .map(|p| d.to_host(p))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    for (i, (c, g)) in finals[0].iter().zip(&finals[1]).enumerate() {
        // Three SGD steps of f32 kernels summing in different orders: 1e-4 relative + absolute.
        c.allclose(g, 1e-4, 1e-4)
            .map_err(|m| format!("parameter {i} after 3 steps, cpu vs gpu: {m}"))?;
    }
    Ok(())
}

#[test]
fn in_place_updates_do_not_touch_clones() -> TestResult {
    let Some(dev) = gpu() else {
        return Ok(());
    };
    let w = Tensor::new(tensor::Shape::new(&[3])?, vec![1.0, 2.0, 3.0])?;
    let mut p = dev.upload(&w)?;
    let saved = p.clone();
    let g = dev.full(&[3], 1.0)?;
    dev.sgd_step(&SgdConfig::plain(0.5), &mut p, &g, None)?;
    let mut acc = saved.clone();
    dev.add_assign(&mut acc, &g)?;
    let mut filled = saved.clone();
    dev.fill(&mut filled, 9.0)?;
    assert_eq!(dev.to_host(&p)?.data(), &[0.5, 1.5, 2.5]);
    assert_eq!(dev.to_host(&acc)?.data(), &[2.0, 3.0, 4.0]);
    assert_eq!(dev.to_host(&filled)?.data(), &[9.0, 9.0, 9.0]);
    assert_eq!(dev.to_host(&saved)?.data(), &[1.0, 2.0, 3.0]);
    Ok(())
}

#[test]
fn host_and_gpu_tensors_do_not_mix() -> TestResult {
    let Some(dev) = gpu() else {
        return Ok(());
    };
    let cpu = Device::cpu();
    let t = Tensor::new(tensor::Shape::new(&[2, 2])?, vec![1.0, 2.0, 3.0, 4.0])?;
    let (on_gpu, on_cpu) = (dev.upload(&t)?, cpu.upload(&t)?);
    let mismatch = |r: conv_kernels::Result<conv_kernels::DeviceTensor>| {
        matches!(r, Err(KernelError::DeviceMismatch { .. }))
    };
    assert!(mismatch(dev.add(&on_gpu, &on_cpu)));
    assert!(mismatch(cpu.add(&on_cpu, &on_gpu)));
    assert!(mismatch(dev.activation(&on_cpu, Activation::Relu)));
    assert!(matches!(
        cpu.to_host(&on_gpu),
        Err(KernelError::DeviceMismatch { .. })
    ));
    let mut p = on_gpu.clone();
    assert!(matches!(
        dev.sgd_step(&SgdConfig::plain(0.1), &mut p, &on_cpu, None),
        Err(KernelError::DeviceMismatch { .. })
    ));
    let labels = cpu.upload_indices(&[0, 1])?;
    assert!(matches!(
        dev.softmax_cross_entropy(&on_gpu, &labels, true),
        Err(KernelError::DeviceMismatch { .. })
    ));
    Ok(())
}

#[test]
fn tensors_past_the_binding_limit_are_rejected() -> TestResult {
    let Some(dev) = gpu() else {
        return Ok(());
    };
    let limit = dev.gpu_context().ok_or("gpu context")?.max_tensor_bytes();
    let too_many = (limit / 4 + 1) as usize;
    match dev.zeros(&[too_many]) {
        Err(KernelError::TooLarge {
            bytes, limit: l, ..
        }) => {
            assert!(bytes > l);
            Ok(())
        }
        other => Err(format!("expected TooLarge, got {other:?}").into()),
    }
}

#[test]
fn large_sums_use_several_reduction_levels() -> TestResult {
    let Some(dev) = gpu() else {
        return Ok(());
    };
    // 3·2^20 ones: three levels of 1024-wide partial sums, exact in f32.
    let n = 3 << 20;
    let s = dev.read_scalar(&dev.sum(&dev.full(&[n], 1.0)?)?)?;
    assert_eq!(s, n as f32);
    Ok(())
}

#[test]
fn empty_tensors_are_fine() -> TestResult {
    let Some(dev) = gpu() else {
        return Ok(());
    };
    let e = dev.zeros(&[0, 3])?;
    let y = dev.activation(&e, Activation::Tanh)?;
    assert_eq!(dev.to_host(&y)?.numel(), 0);
    assert_eq!(dev.read_scalar(&dev.sum(&e)?)?, 0.0);
    Ok(())
}

#[test]
fn device_selection() -> TestResult {
    let cpu = Device::select("cpu")?;
    assert!(matches!(cpu.device, Device::Cpu(_)), "{}", cpu.reason);
    assert!(Device::select("tpu").is_err());
    let auto = Device::auto();
    assert!(!auto.reason.is_empty() && !auto.reason.contains('\n'));
    if let Some(dev) = gpu() {
        let info = dev.gpu_context().ok_or("gpu context")?.info().clone();
        assert!(
            ["Vulkan", "Metal", "Dx12"].contains(&info.backend.as_str()),
            "{info:?}"
        );
        // A software adapter is only taken by auto() when FOVEA_DEVICE=gpu asks for it.
        let asked = std::env::var("FOVEA_DEVICE").is_ok_and(|v| v.eq_ignore_ascii_case("gpu"));
        if info.software && !asked {
            assert!(!auto.device.is_gpu(), "{}", auto.reason);
        }
    }
    Ok(())
}
