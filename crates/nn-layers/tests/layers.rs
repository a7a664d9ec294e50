//! Layers, modules and training behaviour.

use autograd::Tape;
use conv_kernels::{Conv2dSpec, Device, SgdConfig};
use fovea_test_support::test_device;
use nn_layers::{
    Conv2d, Dropout, Flatten, LayerInfo, Linear, MaxPool2d, Module, NnError, Optimizer, ReLU,
    Reshape, Sequential, Sgd, StateDict, Tanh, lenet, loss,
};
use tensor::{SeededRng, Tensor};

type R = Result<(), Box<dyn std::error::Error>>;

#[test]
fn sequential_names_match_pytorch_and_nest() {
    let dev = Device::cpu();
    let mut rng = SeededRng::new(0);
    let inner = Sequential::new()
        .with(Linear::new(&dev, &mut rng, 4, 3).unwrap())
        .with(Tanh);
    let net = Sequential::new()
        .with(Flatten)
        .with(inner)
        .with(Linear::with_bias(&dev, &mut rng, 3, 2, false).unwrap());
    let names: Vec<_> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["1.0.weight", "1.0.bias", "2.weight"]);
    assert_eq!(net.num_parameters(), 12 + 3 + 6);
    assert_eq!(net.output_dims(&[5, 2, 2]).unwrap(), [5, 2]);
}

#[test]
fn default_init_bounds_and_lenet_xavier() {
    let dev = Device::cpu();
    let mut rng = SeededRng::new(1);
    let max_abs = |t: Tensor| t.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    let f32_of = |sd: &StateDict, n: &str| sd[n].as_f32().unwrap().clone();
    let conv = Conv2d::new(&dev, &mut rng, 6, 16, 5, Conv2dSpec::default()).unwrap();
    let b = 1.0 / 150f32.sqrt();
    assert!(max_abs(dev.to_host(&conv.weight.value()).unwrap()) <= b);
    assert!(max_abs(dev.to_host(&conv.bias.as_ref().unwrap().value()).unwrap()) <= b);

    let net = lenet::seed(&dev, &mut rng).unwrap();
    let sd = net.state_dict(&dev).unwrap();
    // Xavier bound √(6/(fan_in+fan_out)) on weights; biases keep U(±1/√fan_in).
    for (w, fan_in, fan_out) in [
        ("1.weight", 25, 150),
        ("4.weight", 150, 400),
        ("8.weight", 400, 120),
        ("10.weight", 120, 84),
        ("12.weight", 84, 10),
    ] {
        let bound = (6.0 / (fan_in + fan_out) as f32).sqrt();
        let m = max_abs(f32_of(&sd, w));
        assert!(m <= bound && m > 0.7 * bound, "{w}: {m} vs {bound}");
        let bias = w.replace("weight", "bias");
        let m = max_abs(f32_of(&sd, &bias));
        assert!(m <= 1.0 / (fan_in as f32).sqrt(), "{bias}: {m}");
    }
    // Same seed, same model.
    let sd7 = |seed| {
        lenet::seed(&dev, &mut SeededRng::new(seed))
            .unwrap()
            .state_dict(&dev)
            .unwrap()
    };
    assert_eq!(sd7(7)["1.weight"], sd7(7)["1.weight"]);
    assert_ne!(sd7(7)["1.weight"], sd7(8)["1.weight"]);
}

#[test]
fn reshape_infers_minus_one_and_rejects_bad_views() {
    let dev = Device::cpu();
    let tape = Tape::new(&dev);
    let x = tape.constant(dev.zeros(&[2, 784]).unwrap());
    let y = Reshape::new(&[-1, 1, 28, 28]).forward(&x).unwrap();
    assert_eq!(y.dims(), [2, 1, 28, 28]);
    assert!(Reshape::new(&[-1, -1]).forward(&x).is_err());
    assert!(Reshape::new(&[-1, 5]).forward(&x).is_err());
    assert!(Reshape::new(&[3, 7]).output_dims(&[2, 784]).is_err());
}

fn dropout_masks_in_training_and_passes_through_in_eval(dev: &Device) -> R {
    let mut d = Dropout::new(0.25, 3)?;
    let tape = Tape::new(dev);
    let x = tape.leaf(dev.upload(&Tensor::ones(&[40, 50])?)?);
    let y = dev.to_host(d.forward(&x)?.value())?;
    let kept = y.data().iter().filter(|&&v| v != 0.0).count() as f32 / 2000.0;
    assert!((kept - 0.75).abs() < 0.04, "kept {kept}");
    assert!(
        y.data()
            .iter()
            .all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6)
    );
    // The gradient goes through the same mask.
    let y_var = d.forward(&x)?;
    let mask = dev.to_host(y_var.value())?;
    let grads = y_var.backward_with(dev.full(&[40, 50], 1.0)?)?;
    assert_eq!(dev.to_host(grads.get(&x).unwrap())?.data(), mask.data());

    d.eval();
    let tape = Tape::new(dev);
    let x = tape.constant(dev.upload(&Tensor::ones(&[3, 3])?)?);
    assert_eq!(dev.to_host(d.forward(&x)?.value())?.sum(), 9.0);
    assert!(Dropout::new(1.5, 0).is_err());
    Ok(())
}
test_device!(dropout_masks_in_training_and_passes_through_in_eval);

#[test]
fn training_mode_propagates_through_sequential() {
    let mut net = Sequential::new()
        .with(Dropout::new(0.9, 0).unwrap())
        .with(ReLU);
    assert!(net.is_training());
    net.eval();
    assert!(!net.is_training());
    let dev = Device::cpu();
    let tape = Tape::new(&dev);
    let x = tape.constant(dev.upload(&Tensor::ones(&[4, 4]).unwrap()).unwrap());
    assert_eq!(
        dev.to_host(net.forward(&x).unwrap().value()).unwrap().sum(),
        16.0
    );
    net.train();
    assert!(dev.to_host(net.forward(&x).unwrap().value()).unwrap().sum() < 16.0 * 2.0);
}

#[test]
fn a_failing_layer_is_named() {
    let dev = Device::cpu();
    let net = lenet::seed(&dev, &mut SeededRng::new(0)).unwrap();
    let tape = Tape::new(&dev);
    let x = tape.constant(dev.zeros(&[2, 3, 28, 28]).unwrap());
    // 3 channels reshape to [6, 1, 28, 28] fine; a 32x32 image does not fit Linear(400, ..).
    assert_eq!(net.forward(&x).unwrap().dims(), [6, 10]);
    let x = tape.constant(dev.zeros(&[2, 1, 32, 32]).unwrap());
    let msg = net.forward(&x).unwrap_err().to_string();
    assert!(msg.contains("layer 0 (Reshape)"), "{msg}");
    let net = Sequential::new()
        .with(Flatten)
        .with(Linear::new(&dev, &mut SeededRng::new(0), 5, 2).unwrap());
    let msg = net
        .forward(&tape.constant(dev.zeros(&[2, 6]).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("layer 1 (Linear)") && msg.contains("[2, 6]") && msg.contains("[2, 5]"),
        "{msg}"
    );
}

#[test]
fn load_state_dict_reports_everything_and_changes_nothing() {
    let dev = Device::cpu();
    let net = lenet::seed(&dev, &mut SeededRng::new(0)).unwrap();
    let before = net.state_dict(&dev).unwrap();
    let mut sd: StateDict = before.clone();
    sd.remove("1.bias");
    sd.insert(
        "1.weight".into(),
        Tensor::zeros(&[6, 1, 3, 3]).unwrap().into(),
    );
    sd.insert("99.weight".into(), Tensor::zeros(&[1]).unwrap().into());
    sd.insert("4.bias".into(), 3i64.into());
    let err = net.load_state_dict(&dev, &sd).unwrap_err();
    let NnError::StateMismatch { mismatches, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(mismatches.missing, ["1.bias"]);
    assert_eq!(mismatches.unexpected, ["99.weight"]);
    assert_eq!(mismatches.misshaped.len(), 1);
    assert_eq!(
        mismatches.wrong_dtype,
        [("4.bias".to_string(), "I64".to_string(), "F32".to_string())]
    );
    assert_eq!(
        net.state_dict(&dev).unwrap()["1.weight"],
        before["1.weight"]
    );
}

fn both_lenets_learn_a_small_batch(dev: &Device) -> R {
    for variant in [lenet::Variant::Seed, lenet::Variant::Modern] {
        let mut rng = SeededRng::new(4);
        let net = lenet::build(variant, dev, &mut rng)?;
        let lr = if variant == lenet::Variant::Seed {
            0.9
        } else {
            0.05
        };
        let mut opt = Sgd::new(dev, net.named_parameters(), SgdConfig::plain(lr))?;
        let x = dev.upload(&Tensor::rand_uniform(&[16, 1, 28, 28], 0.0, 1.0, &mut rng)?)?;
        let labels: Vec<u32> = (0..16).map(|i| (i % 2) as u32).collect();
        let labels = dev.upload_indices(&labels)?;
        let mut losses = Vec::new();
        for _ in 0..30 {
            let tape = Tape::new(dev);
            let out = loss::cross_entropy(&net.forward(&tape.constant(x.clone()))?, &labels)?;
            let grads = out.loss.backward()?;
            opt.step(&grads)?;
            losses.push(dev.read_scalar(out.loss.value())?);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < 0.8 * first, "{variant:?}: {losses:?}");
    }
    Ok(())
}
test_device!(both_lenets_learn_a_small_batch);

#[test]
fn evaluation_under_no_grad_records_nothing() {
    let dev = Device::cpu();
    let net = Sequential::new()
        .with(Conv2d::new(&dev, &mut SeededRng::new(0), 1, 2, 3, Conv2dSpec::new(1, 1)).unwrap())
        .with(ReLU)
        .with(MaxPool2d::new(2, 2, 0))
        .with(Flatten);
    let tape = Tape::new(&dev);
    let _g = tape.no_grad();
    let y = net
        .forward(&tape.constant(dev.zeros(&[1, 1, 4, 4]).unwrap()))
        .unwrap();
    assert_eq!(y.dims(), [1, 8]);
    assert!(!y.requires_grad());
    // Param leaves are registered, but no op node is.
    assert_eq!(tape.len(), 2);
}

#[test]
fn optimizers_skip_params_without_gradients_and_change_lr() {
    let dev = Device::cpu();
    let mut rng = SeededRng::new(0);
    let used = Linear::new(&dev, &mut rng, 3, 2).unwrap();
    let unused = Linear::new(&dev, &mut rng, 3, 2).unwrap();
    let mut params = used.named_parameters();
    params.extend(
        unused
            .named_parameters()
            .into_iter()
            .map(|(n, p)| (format!("u.{n}"), p)),
    );
    let mut opt = Sgd::new(&dev, params, SgdConfig::plain(0.1)).unwrap();
    opt.set_lr(0.5);
    assert_eq!(opt.lr(), 0.5);
    let before = dev.to_host(&unused.weight.value()).unwrap();
    let tape = Tape::new(&dev);
    let y = used
        .forward(&tape.constant(dev.full(&[1, 3], 1.0).unwrap()))
        .unwrap();
    let labels = dev.upload_indices(&[1]).unwrap();
    let grads = loss::cross_entropy(&y, &labels)
        .unwrap()
        .loss
        .backward()
        .unwrap();
    opt.step(&grads).unwrap();
    assert_eq!(
        dev.to_host(&unused.weight.value()).unwrap().data(),
        before.data()
    );
}
