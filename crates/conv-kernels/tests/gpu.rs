//! GPU-specific behaviour: tensors stay on the device (pool and transfer counters), copy-on-write
//! of shared buffers, device mixing errors, size limits and device selection. The kernels
//! themselves are checked by the shared suites (`fast_vs_reference`, `golden`, ...), which run on
//! the GPU as their own `…::gpu` tests.
//!
//! Each test here is `<name>::gpu` (`test_device!(<name>: gpu)`): without an adapter it prints
//! why and passes; with `FOVEA_REQUIRE_GPU=1` it fails.

use conv_kernels::{
    Activation, Device, DeviceKind, GpuContext, GpuOptions, KernelError, SgdConfig,
};
use fovea_test_support::lenet::{Arch, ConvLayer, HandNet};
use fovea_test_support::{TestResult, gpu_under_test, test_device};
use std::sync::Arc;
use tensor::{SeededRng, Tensor};

/// A private context, so counters are not disturbed by tests running in parallel.
fn private_gpu() -> TestResult<Device> {
    let opts = GpuOptions {
        allow_software: true,
        ..GpuOptions::default()
    };
    Ok(Device::Gpu(Arc::new(GpuContext::new(&opts)?)))
}

/// The small net of these tests: conv(1→4, 5, pad 2) → sigmoid → avg-pool → linear(144→5) →
/// cross-entropy, trained with SGD at lr 0.05 by test-support's hand-written step.
fn small_net() -> Arch {
    Arch {
        input: [1, 12, 12],
        convs: vec![ConvLayer {
            out: 4,
            kernel: 5,
            padding: 2,
        }],
        linears: vec![5],
    }
}

/// One step of the small net, returning the loss and correct-count device scalars.
fn small_step(
    net: &mut HandNet,
    x: &conv_kernels::DeviceTensor,
    labels: &conv_kernels::IndexTensor,
) -> TestResult<(conv_kernels::DeviceTensor, conv_kernels::DeviceTensor)> {
    let out = net.step(x, labels, 0.05)?;
    Ok((out.loss, out.correct))
}

fn training_steps_reuse_buffers_and_read_back_only_scalars(_shared: &Device) -> TestResult {
    let dev = private_gpu()?;
    let mut rng = SeededRng::new(7);
    let x = dev.upload(&Tensor::randn(&[8, 1, 12, 12], &mut rng)?)?;
    let labels = dev.upload_indices(&[0, 1, 2, 3, 4, 0, 1, 2])?;
    let mut params = Vec::new();
    for dims in [&[4, 1, 5, 5][..], &[4], &[5, 144], &[5]] {
        params.push(dev.upload(&Tensor::rand_uniform(dims, -0.3, 0.3, &mut rng)?)?);
    }
    let mut net = HandNet::from_params(&dev, small_net(), params)?;
    let mut losses = Vec::new();
    {
        // Warm-up step: pipelines compiled, pool filled (its scalars dropped, as in a loop).
        let (l, c) = small_step(&mut net, &x, &labels)?;
        losses.push(dev.read_scalar(&l)?);
        dev.read_scalar(&c)?;
    }
    let (pool0, xfer0) = (dev.pool_stats().ok_or("pool stats")?, dev.transfer_stats());
    let steps = 4;
    for _ in 0..steps {
        let (l, c) = small_step(&mut net, &x, &labels)?;
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
test_device!(training_steps_reuse_buffers_and_read_back_only_scalars: gpu);

fn gpu_matches_cpu_over_training_steps(dev: &Device) -> TestResult {
    let cpu = Device::cpu();
    let mut rng = SeededRng::new(3);
    let x = Tensor::randn(&[4, 1, 12, 12], &mut rng)?;
    let labels = [3, 1, 4, 1];
    let mut host_params = Vec::new();
    for dims in [&[4, 1, 5, 5][..], &[4], &[5, 144], &[5]] {
        host_params.push(Tensor::rand_uniform(dims, -0.3, 0.3, &mut rng)?);
    }
    let mut finals = Vec::new();
    for d in [&cpu, dev] {
        let params: Vec<_> = host_params
            .iter()
            .map(|t| d.upload(t))
            .collect::<Result<_, _>>()?;
        let mut net = HandNet::from_params(d, small_net(), params)?;
        let (xd, ld) = (d.upload(&x)?, d.upload_indices(&labels)?);
        for _ in 0..3 {
            small_step(&mut net, &xd, &ld)?;
        }
        finals.push(
            net.params()
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
test_device!(gpu_matches_cpu_over_training_steps: gpu);

fn in_place_updates_do_not_touch_clones(dev: &Device) -> TestResult {
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
test_device!(in_place_updates_do_not_touch_clones: gpu);

fn host_and_gpu_tensors_do_not_mix(dev: &Device) -> TestResult {
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
test_device!(host_and_gpu_tensors_do_not_mix: gpu);

fn several_scalars_are_read_back_in_one_submission(_: &Device) -> TestResult {
    let dev = private_gpu()?;
    let scalar = |v: f32| Tensor::new(tensor::Shape::new(&[1])?, vec![v]);
    let (a, b, c) = (
        dev.upload(&scalar(1.5)?)?,
        dev.upload(&scalar(-2.0)?)?,
        dev.upload(&scalar(7.0)?)?,
    );
    let sum = dev.add(&a, &b)?;
    let (xfer, cmds) = (dev.transfer_stats(), dev.command_stats());
    assert_eq!(dev.read_scalars(&[&sum, &c, &a])?, vec![-0.5, 7.0, 1.5]);
    let (xfer1, cmds1) = (dev.transfer_stats(), dev.command_stats());
    assert_eq!(xfer1.downloads - xfer.downloads, 1);
    assert_eq!(xfer1.download_bytes - xfer.download_bytes, 12);
    assert_eq!(
        cmds1.submits - cmds.submits,
        1,
        "the add and the read-back together"
    );
    assert_eq!(dev.read_scalars(&[])?, Vec::<f32>::new());
    // Not scalars, or not all on this device: errors, nothing read.
    let pair = dev.upload(&Tensor::new(tensor::Shape::new(&[2])?, vec![1.0, 2.0])?)?;
    assert!(matches!(
        dev.read_scalars(&[&a, &pair]),
        Err(KernelError::Shape { .. })
    ));
    let cpu = Device::cpu();
    let on_cpu = cpu.upload(&scalar(3.0)?)?;
    assert!(matches!(
        dev.read_scalars(&[&a, &on_cpu]),
        Err(KernelError::DeviceMismatch { .. })
    ));
    assert_eq!(cpu.read_scalars(&[&on_cpu, &on_cpu])?, vec![3.0, 3.0]);
    assert_eq!(dev.transfer_stats().downloads, xfer1.downloads);
    Ok(())
}
test_device!(several_scalars_are_read_back_in_one_submission: gpu);

fn tensors_past_the_binding_limit_are_rejected(dev: &Device) -> TestResult {
    let limit = dev.gpu_context().ok_or("gpu context")?.max_tensor_bytes();
    let too_many = (limit / 4 + 1) as usize;
    let err = match dev.zeros(&[too_many]) {
        Err(e) => e,
        Ok(_) => return Err("expected TooLarge, got a tensor".into()),
    };
    let KernelError::TooLarge {
        bytes,
        limit: l,
        adapter,
        ..
    } = &err
    else {
        return Err(format!("expected TooLarge, got {err:?}").into());
    };
    assert!(bytes > l);
    let name = &dev.gpu_context().ok_or("gpu context")?.info().name;
    assert_eq!(adapter, name);
    assert!(err.to_string().contains(name.as_str()), "{err}");
    assert!(err.is_device_fault());
    Ok(())
}
test_device!(tensors_past_the_binding_limit_are_rejected: gpu);

fn large_sums_use_several_reduction_levels(dev: &Device) -> TestResult {
    // 3·2^20 ones: three levels of 1024-wide partial sums, exact in f32.
    let n = 3 << 20;
    let s = dev.read_scalar(&dev.sum(&dev.full(&[n], 1.0)?)?)?;
    assert_eq!(s, n as f32);
    Ok(())
}
test_device!(large_sums_use_several_reduction_levels: gpu);

fn empty_tensors_are_fine(dev: &Device) -> TestResult {
    let e = dev.zeros(&[0, 3])?;
    let y = dev.activation(&e, Activation::Tanh)?;
    assert_eq!(dev.to_host(&y)?.numel(), 0);
    assert_eq!(dev.read_scalar(&dev.sum(&e)?)?, 0.0);
    Ok(())
}
test_device!(empty_tensors_are_fine: gpu);

#[test]
fn device_selection() -> TestResult {
    let cpu = Device::select("cpu")?;
    assert!(matches!(cpu.device, Device::Cpu(_)), "{}", cpu.reason);
    assert!(Device::select("tpu").is_err());
    let auto = Device::auto();
    assert!(!auto.reason.is_empty() && !auto.reason.contains('\n'));
    if let Some(dev) = gpu_under_test() {
        let info = dev.gpu_context().ok_or("gpu context")?.info().clone();
        assert!(
            ["Vulkan", "Metal", "Dx12"].contains(&info.backend.as_str()),
            "{info:?}"
        );
        // A software adapter is only taken by auto() when FOVEA_DEVICE=gpu asks for it.
        let asked = matches!(DeviceKind::from_env(), Some(Ok(DeviceKind::Gpu)));
        if info.software && !asked {
            assert!(!auto.device.is_gpu(), "{}", auto.reason);
        }
    }
    Ok(())
}

/// Conv weights that fit a uniform binding are read from a uniform copy, larger ones from
/// storage (conv2d.wgsl's `WUNI`): both ways match the reference, forward and gradients.
fn conv_weights_read_as_uniform_or_storage_match_the_reference(dev: &Device) -> TestResult {
    use fovea_test_support::against_reference::conv_case_matches_reference;
    use fovea_test_support::cases::ConvCase;
    // 32·32·3·3 weights are 36 KiB (a uniform binding); 64·64·3·3 are 144 KiB, more than the
    // 64 KiB that adapters (llvmpipe included) bind as a uniform buffer.
    for channels in [32, 64] {
        let case = ConvCase {
            n: 2,
            c_in: channels,
            c_out: channels,
            hw: [5, 6],
            k: [3, 3],
            spec: conv_kernels::Conv2dSpec {
                padding: [1, 1],
                ..Default::default()
            },
            bias: true,
            act: Some(Activation::Tanh),
            seed: 5,
        };
        conv_case_matches_reference(dev, &case)?;
    }
    Ok(())
}
test_device!(conv_weights_read_as_uniform_or_storage_match_the_reference: gpu);
