//! The `model_train_steps` golden cases of `../shared/golden-cnn/`: two SGD steps (Nesterov
//! momentum, weight decay) of `nin_small` and `resnet_small` from given weights, in training
//! mode, replayed on the CPU and the GPU: logits, loss and every gradient per step, and the
//! whole `state_dict` (batch-norm buffers included) after the last, within the case's
//! tolerance.

use autograd::Tape;
use conv_kernels::{Device, SgdConfig};
use fovea_test_support::{TestResult, golden, test_device};
use nn_layers::{Module, Optimizer, Sequential, Sgd, StateDict, StateTensor, nin, resnet};
use tensor::SeededRng;
use tensor::golden::GoldenCase;

/// The case's model with its initial `state_dict` (`param.NAME`) loaded.
fn model(dev: &Device, case: &GoldenCase) -> TestResult<Sequential> {
    let mut rng = SeededRng::new(0);
    let net = match case.param_str("model")? {
        "nin_small" => nin::nin_small(dev, &mut rng, case.param_f64("dropout")? as f32)?,
        "resnet_small" => resnet::resnet_small(dev, &mut rng)?,
        other => return Err(format!("unknown model `{other}`").into()),
    };
    let mut state = StateDict::new();
    for name in case
        .param_strs("param_names")?
        .into_iter()
        .chain(case.param_strs("buffer_names")?)
    {
        let key = format!("param.{name}");
        let value = if name.ends_with("num_batches_tracked") {
            StateTensor::I64(case.i64(&key)?.1[0])
        } else {
            StateTensor::F32(case.tensor(&key)?.clone())
        };
        state.insert(name.to_string(), value);
    }
    net.load_state_dict(dev, &state)?;
    Ok(net)
}

fn replay_case(dev: &Device, case: &GoldenCase) -> TestResult {
    let net = model(dev, case)?;
    let cfg = SgdConfig {
        lr: case.param_f64("lr")? as f32,
        momentum: case.param_f64("momentum")? as f32,
        weight_decay: case.param_f64("weight_decay")? as f32,
        nesterov: case.param_bool("nesterov")?,
    };
    let params = net.named_parameters();
    let mut opt = Sgd::new(dev, params.clone(), cfg)?;
    for s in 0..case.param_usize("steps")? {
        let tape = Tape::new(dev);
        let x = tape.constant(dev.upload(case.tensor(&format!("x.{s}"))?)?);
        let labels: Vec<u32> = case
            .labels(&format!("labels.{s}"))?
            .into_iter()
            .map(|l| l as u32)
            .collect();
        let logits = net.forward(&x)?;
        case.compare(&format!("logits.{s}"), &logits.value().to_host()?)?;
        let out = logits.cross_entropy(&dev.upload_indices(&labels)?)?;
        case.compare(
            &format!("loss.{s}"),
            &out.loss.value().to_host()?.reshape(&[1])?,
        )?;
        let grads = out.loss.backward()?;
        for (name, p) in &params {
            let g = grads
                .param(p)
                .ok_or_else(|| format!("no gradient for {name}"))?;
            case.compare(&format!("grad.{s}.{name}"), &g.to_host()?)?;
        }
        opt.step(&grads)?;
    }
    for (name, value) in net.state_dict(dev)? {
        let key = format!("final.{name}");
        match value {
            StateTensor::F32(t) => case.compare(&key, &t)?,
            StateTensor::I64(v) => {
                let want = case.i64(&key)?.1[0];
                if v != want {
                    return Err(format!("{key}: {v}, expected {want}").into());
                }
            }
        }
    }
    Ok(())
}

/// Every `model_train_steps` case.
fn golden_model_train_steps(dev: &Device) -> TestResult {
    golden::replay(dev, "model_train_steps", replay_case)
}
test_device!(golden_model_train_steps: cpu, gpu);
