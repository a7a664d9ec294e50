//! The PyTorch golden `lenet_train_steps` cases: d2l's LeNet with SGD (lr 0.9) and the modern
//! variant with Adam (lr 1e-3), replayed step by step from the stored initial parameters.
//! Logits, loss, every gradient and the final parameters must match within the case tolerance.

use autograd::Tape;
use conv_kernels::{AdamConfig, Device, SgdConfig};
use fovea_test_support::golden::{self, GoldenCase};
use fovea_test_support::test_device;
use nn_layers::{Adam, Module, Optimizer, Sgd, StateDict, lenet, loss};
use tensor::{SeededRng, Tensor};

type R = Result<(), Box<dyn std::error::Error>>;

fn replay(dev: &Device, case: &GoldenCase) -> R {
    let variant: lenet::Variant = case.param_str("model")?.parse()?;
    let net = lenet::build(variant, dev, &mut SeededRng::new(0))?;
    let names = case.param_strs("param_names")?;
    let init: StateDict = names
        .iter()
        .map(|n| {
            Ok((
                n.to_string(),
                case.tensor(&format!("param.{n}"))?.clone().into(),
            ))
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    net.load_state_dict(dev, &init)?;

    let lr = case.param_f64("lr")? as f32;
    let weight_decay = case.param_f64("weight_decay")? as f32;
    let mut opt: Box<dyn Optimizer> = match case.param_str("optimizer")? {
        "sgd" => Box::new(Sgd::new(
            dev,
            net.named_parameters(),
            SgdConfig {
                lr,
                momentum: case.param_f64("momentum")? as f32,
                weight_decay,
                nesterov: false,
            },
        )?),
        "adam" => {
            let [beta1, beta2] = case.param_f64_2("betas")?;
            Box::new(Adam::new(
                dev,
                net.named_parameters(),
                AdamConfig {
                    lr,
                    beta1: beta1 as f32,
                    beta2: beta2 as f32,
                    eps: case.param_f64("eps")? as f32,
                    weight_decay,
                },
            )?)
        }
        other => return Err(format!("unknown optimizer {other}").into()),
    };

    let params = net.named_parameters();
    for s in 0..case.param_usize("steps")? {
        let labels: Vec<u32> = case
            .labels(&format!("labels.{s}"))?
            .iter()
            .map(|&l| l as u32)
            .collect();
        let labels = dev.upload_indices(&labels)?;
        let tape = Tape::new(dev);
        let x = tape.constant(dev.upload(case.tensor(&format!("x.{s}"))?)?);
        let logits = net.forward(&x)?;
        case.compare(&format!("logits.{s}"), &dev.to_host(logits.value())?)?;
        let out = loss::cross_entropy(&logits, &labels)?;
        let l = Tensor::from_vec(&[1], vec![dev.read_scalar(out.loss.value())?])?;
        case.compare(&format!("loss.{s}"), &l)?;
        let grads = out.loss.backward()?;
        for (name, p) in &params {
            let g = grads.param(p).ok_or(format!("no gradient for {name}"))?;
            case.compare(&format!("grad.{s}.{name}"), &dev.to_host(g)?)?;
        }
        opt.step(&grads)?;
    }
    for (name, t) in net.state_dict(dev)? {
        let t = t.as_f32().ok_or(format!("{name} is not an f32 tensor"))?;
        case.compare(&format!("final.{name}"), t)?;
    }
    Ok(())
}

fn lenet_seed_sgd_and_modern_adam_match_pytorch(dev: &Device) -> R {
    let cases = golden::cases("lenet_train_steps").map_err(|e| e.to_string())?;
    let models: Vec<_> = cases
        .iter()
        .map(|c| c.param_str("model").unwrap())
        .collect();
    assert!(
        models.contains(&"seed") && models.contains(&"modern"),
        "{models:?}"
    );
    golden::replay(dev, "lenet_train_steps", |dev, case| {
        replay(dev, case).map_err(|e| format!("{}: {e}", case.name))
    })
    .map_err(|e| e.to_string())?;
    Ok(())
}
test_device!(lenet_seed_sgd_and_modern_adam_match_pytorch);
