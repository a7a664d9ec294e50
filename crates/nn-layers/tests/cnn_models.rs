//! nin_small and resnet_small: names, counts and shapes exactly as
//! `../shared/golden-cnn/models.py` defines them, training lowers the loss on every device,
//! batch-norm buffers travel through `state_dict`, and eval mode uses the running statistics.

use conv_kernels::{AdamConfig, Device, SgdConfig};
use fovea_test_support::{TestResult, test_device};
use nn_layers::{Adam, BufferKind, Module, Sequential, Sgd, Tape, nin, optim::Optimizer, resnet};
use tensor::{SeededRng, Tensor};

/// The `param_names` of the golden `resnet_small_sgd` case (PyTorch's `named_parameters`).
fn resnet_param_names() -> Vec<String> {
    let mut names = vec![
        "0.0.bias",
        "0.0.weight",
        "0.1.bias",
        "0.1.weight",
        "6.bias",
        "6.weight",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for stage in 1..=3 {
        for block in 0..2 {
            let mut layers = vec!["bn1", "bn2", "conv1", "conv2"];
            if stage > 1 && block == 0 {
                layers.push("conv3");
            }
            for l in layers {
                for p in ["bias", "weight"] {
                    names.push(format!("{stage}.{block}.{l}.{p}"));
                }
            }
        }
    }
    names.sort();
    names
}

#[test]
fn resnet_small_has_pytorchs_names_buffers_and_counts() -> TestResult {
    let dev = Device::Reference;
    let net = resnet::resnet_small(&dev, &mut SeededRng::new(0))?;
    assert_eq!(net.num_parameters(), resnet::NUM_PARAMETERS);
    let mut names: Vec<_> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, resnet_param_names());
    let buffers = net.named_buffers();
    assert_eq!(buffers.len(), 13 * 3);
    for (name, b) in &buffers {
        let kind = if name.ends_with("num_batches_tracked") {
            BufferKind::I64
        } else {
            BufferKind::F32
        };
        assert_eq!(b.kind(), kind, "{name}");
    }
    assert!(buffers.iter().any(|(n, _)| n == "3.1.bn2.running_var"));
    let rows = net.layer_summaries(&dev, &[2, 1, 28, 28])?;
    assert_eq!(
        rows.last().map(|r| r.output_dims.clone()),
        Some(vec![2, 10])
    );
    Ok(())
}

#[test]
fn nin_small_has_pytorchs_names_and_counts() -> TestResult {
    let dev = Device::Reference;
    let net = nin::nin_small(&dev, &mut SeededRng::new(0), 0.5)?;
    assert_eq!(net.num_parameters(), nin::NUM_PARAMETERS);
    let mut names: Vec<_> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    names.sort();
    let mut want = Vec::new();
    for block in [0, 2, 5] {
        for conv in [0, 2, 4] {
            for p in ["bias", "weight"] {
                want.push(format!("{block}.{conv}.{p}"));
            }
        }
    }
    want.sort();
    assert_eq!(names, want);
    assert!(net.named_buffers().is_empty());
    let rows = net.layer_summaries(&dev, &[2, 1, 28, 28])?;
    let dims: Vec<_> = rows.iter().map(|r| r.output_dims.clone()).collect();
    assert_eq!(dims[0], [2, 32, 28, 28]);
    assert_eq!(dims[1], [2, 32, 13, 13]);
    assert_eq!(dims[3], [2, 64, 6, 6]);
    assert_eq!(dims.last().cloned(), Some(vec![2, 10]));
    Ok(())
}

/// Images of 10 classes a small network can tell apart: a bright 6×6 square whose position
/// is the class, on noise.
fn synthetic_batch(n: usize, rng: &mut SeededRng) -> TestResult<(Tensor, Vec<u32>)> {
    let mut x = Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 0.3, rng)?;
    let labels: Vec<u32> = (0..n).map(|_| rng.below(10) as u32).collect();
    for (i, &l) in labels.iter().enumerate() {
        let (r, c) = (2 + (l as usize / 5) * 12, 2 + (l as usize % 5) * 5);
        for y in r..r + 6 {
            for xx in c..c + 5 {
                x.data_mut()[i * 784 + y * 28 + xx] = 1.0;
            }
        }
    }
    Ok((x, labels))
}

/// Nesterov SGD with weight decay, the resnet recipe's optimizer.
fn sgd(dev: &Device, net: &Sequential, lr: f32) -> TestResult<Box<dyn Optimizer>> {
    let cfg = SgdConfig {
        lr,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: true,
    };
    Ok(Box::new(Sgd::new(dev, net.named_parameters(), cfg)?))
}

/// Mean loss of the first and of the last 4 of `steps` steps over 4 batches of 32 images.
fn train(
    dev: &Device,
    net: &Sequential,
    opt: &mut dyn Optimizer,
    steps: usize,
) -> TestResult<(f32, f32)> {
    let mut rng = SeededRng::new(3);
    let data: Vec<_> = (0..4)
        .map(|_| synthetic_batch(32, &mut rng))
        .collect::<Result<_, _>>()?;
    let mut losses = Vec::new();
    for s in 0..steps {
        let (x, labels) = &data[s % data.len()];
        let tape = Tape::new(dev);
        let x = tape.constant(dev.upload(x)?);
        let out = net
            .forward(&x)?
            .cross_entropy(&dev.upload_indices(labels)?)?;
        let grads = out.loss.backward()?;
        opt.step(&grads)?;
        losses.push(out.loss.value().read_scalar()?);
    }
    let k = 4;
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    Ok((mean(&losses[..k]), mean(&losses[steps - k..])))
}

fn resnet_small_training_lowers_the_loss(dev: &Device) -> TestResult {
    {
        let net = resnet::resnet_small(dev, &mut SeededRng::new(1))?;
        let (first, last) = train(dev, &net, &mut *sgd(dev, &net, 0.05)?, 12)?;
        assert!(last < 0.7 * first, "{}: loss {first} -> {last}", dev.name());
        let nbt = net
            .named_buffers()
            .into_iter()
            .find(|(n, _)| n == "0.1.num_batches_tracked");
        assert_eq!(nbt.ok_or("no buffer")?.1.get_i64()?, 12);
    }
    Ok(())
}
test_device!(resnet_small_training_lowers_the_loss: cpu, gpu);

fn nin_small_training_lowers_the_loss(dev: &Device) -> TestResult {
    {
        let net = nin::nin_small(dev, &mut SeededRng::new(1), 0.0)?;
        nn_layers::init::kaiming_normal_convs(&net, dev, &mut SeededRng::new(2))?;
        let mut adam = Adam::new(
            dev,
            net.named_parameters(),
            AdamConfig {
                lr: 2e-3,
                ..AdamConfig::default()
            },
        )?;
        let (first, last) = train(dev, &net, &mut adam, 40)?;
        assert!(last < 0.8 * first, "{}: loss {first} -> {last}", dev.name());
    }
    Ok(())
}

test_device!(nin_small_training_lowers_the_loss: cpu, gpu);

#[test]
fn batch_norm_buffers_round_trip_and_eval_uses_them() -> TestResult {
    let dev = Device::cpu();
    let mut net = resnet::resnet_small(&dev, &mut SeededRng::new(4))?;
    train(&dev, &net, &mut *sgd(&dev, &net, 0.05)?, 4)?;
    let state = net.state_dict(&dev)?;
    let other = resnet::resnet_small(&dev, &mut SeededRng::new(5))?;
    other.load_state_dict(&dev, &state)?;
    let mut other = other;
    net.eval();
    other.eval();
    let (x, _) = synthetic_batch(8, &mut SeededRng::new(6))?;
    let logits = |m: &Sequential| -> TestResult<Tensor> {
        let tape = Tape::new(&dev);
        let _g = tape.no_grad();
        Ok(m.forward(&tape.constant(dev.upload(&x)?))?
            .value()
            .to_host()?)
    };
    let (a, b) = (logits(&net)?, logits(&other)?);
    assert_eq!(a.data(), b.data(), "same state, same eval logits");
    // Eval is independent of the batch: one image alone gives its row of the batch.
    let single = {
        let tape = Tape::new(&dev);
        let one = Tensor::from_vec(&[1, 1, 28, 28], x.data()[..784].to_vec())?;
        net.forward(&tape.constant(dev.upload(&one)?))?
            .value()
            .to_host()?
    };
    for (p, q) in single.data().iter().zip(&a.data()[..10]) {
        assert!((p - q).abs() < 1e-4, "{p} vs {q}");
    }
    let _ = &mut other;
    Ok(())
}
