//! Checkpoints: round trips (F32 and F16), exact resumption, PyTorch files, and every kind of
//! bad file reported as an error that lists what is wrong.

use autograd::Tape;
use conv_kernels::{AdamConfig, Device, SgdConfig};
use fovea_test_support::test_device;
use nn_layers::checkpoint::{self, TrainingState};
use nn_layers::{
    Adam, Dropout, Module, NnError, Optimizer, Sequential, Sgd, StateDict, StateTensor, lenet, loss,
};
use std::collections::BTreeMap;
use tensor::{FloatStorage, NamedTensors, RngState, SeededRng, Tensor};

type R = Result<(), Box<dyn std::error::Error>>;

fn batch(dev: &Device, seed: u64) -> (conv_kernels::DeviceTensor, conv_kernels::IndexTensor) {
    let mut rng = SeededRng::new(seed);
    let x = Tensor::rand_uniform(&[4, 784], 0.0, 1.0, &mut rng).unwrap();
    let labels: Vec<u32> = (0..4).map(|_| rng.below(10) as u32).collect();
    (
        dev.upload(&x).unwrap(),
        dev.upload_indices(&labels).unwrap(),
    )
}

fn train_step(dev: &Device, net: &Sequential, opt: &mut dyn Optimizer, seed: u64) -> f32 {
    let (x, labels) = batch(dev, seed);
    let tape = Tape::new(dev);
    let out = loss::cross_entropy(&net.forward(&tape.constant(x)).unwrap(), &labels).unwrap();
    let grads = out.loss.backward().unwrap();
    opt.step(&grads).unwrap();
    dev.read_scalar(out.loss.value()).unwrap()
}

fn state() -> TrainingState {
    TrainingState {
        epoch: 3,
        step: 700,
        rng: Some(RngState {
            seed: 42,
            word_pos: 1 << 70,
        }),
        extra: BTreeMap::from([("model".to_string(), "seed".to_string())]),
    }
}

fn max_diff(a: &StateDict, b: &StateDict) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .flat_map(|(n, t)| match (t, &b[n]) {
            (StateTensor::F32(x), StateTensor::F32(y)) => x
                .data()
                .iter()
                .zip(y.data())
                .map(|(x, y)| (x - y).abs())
                .collect(),
            (x, y) => vec![if x == y { 0.0 } else { f32::INFINITY }],
        })
        .fold(0.0, f32::max)
}

fn round_trip_f32_is_exact_and_resumes_identically(dev: &Device) -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ckpt.safetensors");
    let cfg = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 1e-4,
        nesterov: true,
    };
    let net = lenet::seed(dev, &mut SeededRng::new(1))?;
    let mut opt = Sgd::new(dev, net.named_parameters(), cfg)?;
    train_step(dev, &net, &mut opt, 10);
    checkpoint::save(&path, dev, &net, Some(&opt), &state(), FloatStorage::F32)?;

    let net2 = lenet::seed(dev, &mut SeededRng::new(2))?;
    let mut opt2 = Sgd::new(dev, net2.named_parameters(), cfg)?;
    let got = checkpoint::load(&path, dev, &net2, Some(&mut opt2))?;
    assert_eq!(got, state());
    assert_eq!(max_diff(&net.state_dict(dev)?, &net2.state_dict(dev)?), 0.0);

    // Same momentum buffers: the next step is identical.
    let l1 = train_step(dev, &net, &mut opt, 11);
    let l2 = train_step(dev, &net2, &mut opt2, 11);
    assert_eq!(l1, l2);
    assert_eq!(max_diff(&net.state_dict(dev)?, &net2.state_dict(dev)?), 0.0);
    Ok(())
}
test_device!(round_trip_f32_is_exact_and_resumes_identically);

fn round_trip_f16_is_close_and_adam_state_survives(dev: &Device) -> R {
    let dir = tempfile::tempdir()?;
    let (p32, p16) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    let net = lenet::modern(dev, &mut SeededRng::new(3))?;
    let mut opt = Adam::new(dev, net.named_parameters(), AdamConfig::default())?;
    train_step(dev, &net, &mut opt, 20);
    train_step(dev, &net, &mut opt, 21);
    checkpoint::save(&p32, dev, &net, Some(&opt), &state(), FloatStorage::F32)?;
    checkpoint::save(&p16, dev, &net, Some(&opt), &state(), FloatStorage::F16)?;
    let (s32, s16) = (
        std::fs::metadata(&p32)?.len(),
        std::fs::metadata(&p16)?.len(),
    );
    assert!(s16 * 10 < s32 * 6, "f16 {s16} bytes vs f32 {s32}");

    let net2 = lenet::modern(dev, &mut SeededRng::new(4))?;
    let mut opt2 = Adam::new(dev, net2.named_parameters(), AdamConfig::default())?;
    checkpoint::load(&p16, dev, &net2, Some(&mut opt2))?;
    assert_eq!(opt2.steps(), 2);
    let (a, b) = (net.state_dict(dev)?, net2.state_dict(dev)?);
    for (n, t) in &a {
        // f16 keeps 11 significant bits: relative error <= 2^-11.
        let (t, u) = (t.as_f32().unwrap(), b[n].as_f32().unwrap());
        t.allclose(u, 4.9e-4, 1e-7)
            .map_err(|m| format!("{n}: {m}"))?;
    }
    Ok(())
}
test_device!(round_trip_f16_is_close_and_adam_state_survives);

#[test]
fn params_only_load_ignores_optimizer_state_and_dropout_rng_is_restored() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.safetensors");
    let net = lenet::seed(&dev, &mut SeededRng::new(5))?.with(Dropout::new(0.5, 9)?);
    let opt = Sgd::new(
        &dev,
        net.named_parameters(),
        SgdConfig {
            momentum: 0.5,
            ..SgdConfig::plain(0.1)
        },
    )?;
    // Advance the dropout generator, save, then draw a mask.
    let x = Tape::new(&dev).constant(dev.upload(&Tensor::ones(&[1, 784])?)?);
    net.forward(&x)?;
    checkpoint::save(
        &path,
        &dev,
        &net,
        Some(&opt),
        &TrainingState::default(),
        FloatStorage::F32,
    )?;
    let after = dev.to_host(net.forward(&x)?.value())?;

    let net2 = lenet::seed(&dev, &mut SeededRng::new(6))?.with(Dropout::new(0.5, 123)?);
    let st = checkpoint::load(&path, &dev, &net2, None)?;
    assert_eq!(st, TrainingState::default());
    assert_eq!(dev.to_host(net2.forward(&x)?.value())?.data(), after.data());
    Ok(())
}

/// A safetensors file laid out as `safetensors.torch.save_file(net.state_dict(), path)` writes
/// it: header JSON with `__metadata__ {"format": "pt"}`, F32 little-endian tensors.
fn write_pytorch_style(path: &std::path::Path, tensors: &[(String, Tensor)]) -> R {
    let mut header = String::from("{\"__metadata__\":{\"format\":\"pt\"}");
    let mut data = Vec::new();
    for (name, t) in tensors {
        let start = data.len();
        data.extend(t.data().iter().flat_map(|v| v.to_le_bytes()));
        header.push_str(&format!(
            ",\"{name}\":{{\"dtype\":\"F32\",\"shape\":{:?},\"data_offsets\":[{start},{}]}}",
            t.dims(),
            data.len()
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes)?;
    Ok(())
}

#[test]
fn a_pytorch_state_dict_file_loads_into_lenet_seed_unchanged() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("torch.safetensors");
    let mut rng = SeededRng::new(7);
    let shapes: [(&str, &[usize]); 10] = [
        ("1.weight", &[6, 1, 5, 5]),
        ("1.bias", &[6]),
        ("4.weight", &[16, 6, 5, 5]),
        ("4.bias", &[16]),
        ("8.weight", &[120, 400]),
        ("8.bias", &[120]),
        ("10.weight", &[84, 120]),
        ("10.bias", &[84]),
        ("12.weight", &[10, 84]),
        ("12.bias", &[10]),
    ];
    let tensors: Vec<(String, Tensor)> = shapes
        .iter()
        .map(|(n, d)| (n.to_string(), Tensor::randn(d, &mut rng).unwrap()))
        .collect();
    write_pytorch_style(&path, &tensors)?;
    let net = lenet::seed(&dev, &mut SeededRng::new(8))?;
    let st = checkpoint::load(&path, &dev, &net, None)?;
    assert_eq!(st.epoch, 0);
    let got = net.state_dict(&dev)?;
    for (n, t) in &tensors {
        assert_eq!(got[n].as_f32().unwrap().data(), t.data(), "{n}");
    }
    Ok(())
}

fn lenet_file(dev: &Device, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> NamedTensors {
    let net = lenet::seed(dev, &mut SeededRng::new(9)).unwrap();
    let mut tensors: Vec<(String, Tensor)> = net
        .state_dict(dev)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.as_f32().unwrap().clone()))
        .collect();
    edit(&mut tensors);
    let mut out = NamedTensors::new();
    for (n, t) in &tensors {
        out.insert(n.clone(), t).unwrap();
    }
    out
}

fn load_err(dev: &Device, path: &std::path::Path) -> NnError {
    let net = lenet::seed(dev, &mut SeededRng::new(10)).unwrap();
    let before = net.state_dict(dev).unwrap();
    let err = checkpoint::load(path, dev, &net, None).unwrap_err();
    assert_eq!(
        max_diff(&before, &net.state_dict(dev).unwrap()),
        0.0,
        "a failed load changed the model"
    );
    err
}

#[test]
fn missing_extra_and_misshaped_tensors_are_all_listed() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.safetensors");
    lenet_file(&dev, |ts| {
        ts.retain(|(n, _)| n != "4.bias" && n != "12.weight");
        for (n, t) in ts.iter_mut() {
            if n == "8.weight" {
                *t = Tensor::zeros(&[120, 401]).unwrap();
            }
        }
        ts.push(("13.weight".into(), Tensor::zeros(&[2]).unwrap()));
        ts.push(("extra".into(), Tensor::zeros(&[1]).unwrap()));
    })
    .write(&path)?;
    let err = load_err(&dev, &path);
    let NnError::StateMismatch { mismatches, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(mismatches.missing, ["4.bias", "12.weight"]); // model order
    assert_eq!(mismatches.unexpected, ["13.weight", "extra"]);
    assert_eq!(
        mismatches.misshaped,
        [("8.weight".to_string(), vec![120, 400], vec![120, 401])]
    );
    let msg = err.to_string();
    for part in [
        "missing: 4.bias, 12.weight",
        "unexpected: 13.weight, extra",
        "8.weight (expected [120, 400], found [120, 401])",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    Ok(())
}

#[test]
fn wrong_dtype_is_listed() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dtype.safetensors");
    let mut file = lenet_file(&dev, |ts| ts.retain(|(n, _)| n != "1.bias"));
    file.insert_i64("1.bias", &[6], &[0, 1, 2, 3, 4, 5])?;
    file.write(&path)?;
    let msg = load_err(&dev, &path).to_string();
    assert!(msg.contains("wrong dtype: 1.bias (dtype I64"), "{msg}");
    Ok(())
}

#[test]
fn truncated_and_garbage_files_are_errors() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.safetensors");
    let bytes = lenet_file(&dev, |_| {}).to_bytes()?;
    for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut])?;
        let msg = load_err(&dev, &path).to_string();
        assert!(msg.contains("t.safetensors"), "cut {cut}: {msg}");
    }
    std::fs::write(&path, b"not a safetensors file at all")?;
    load_err(&dev, &path);
    let missing = dir.path().join("nope.safetensors");
    assert!(
        checkpoint::load(
            &missing,
            &dev,
            &lenet::seed(&dev, &mut SeededRng::new(0))?,
            None
        )
        .is_err()
    );
    Ok(())
}

#[test]
fn optimizer_kind_and_state_are_checked() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("o.safetensors");
    let net = lenet::seed(&dev, &mut SeededRng::new(11))?;
    let sgd = Sgd::new(&dev, net.named_parameters(), SgdConfig::plain(0.1))?;
    checkpoint::save(&path, &dev, &net, Some(&sgd), &state(), FloatStorage::F32)?;
    let mut adam = Adam::new(&dev, net.named_parameters(), AdamConfig::default())?;
    let msg = checkpoint::load(&path, &dev, &net, Some(&mut adam))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("optim.kind"), "{msg}");

    // A params-only file cannot restore an optimizer: every state tensor is reported missing.
    let bare = dir.path().join("bare.safetensors");
    checkpoint::save(&bare, &dev, &net, None, &state(), FloatStorage::F32)?;
    let msg = checkpoint::load(&bare, &dev, &net, Some(&mut adam))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("optim.1.weight.exp_avg") && msg.contains("optim.12.bias.exp_avg_sq"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn saving_replaces_the_file_atomically() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("atomic.safetensors");
    let net = lenet::seed(&dev, &mut SeededRng::new(12))?;
    for epoch in 0..3 {
        let st = TrainingState {
            epoch,
            ..TrainingState::default()
        };
        checkpoint::save(&path, &dev, &net, None, &st, FloatStorage::F32)?;
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())?
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["atomic.safetensors"], "temporary files left behind");
    assert_eq!(checkpoint::load(&path, &dev, &net, None)?.epoch, 2);
    Ok(())
}
