//! The PyTorch golden optimizer cases (of every golden directory) through `Sgd` and `Adam`,
//! on every device (each its own test): the parameter after every step.

use autograd::{Param, Tape};
use conv_kernels::{AdamConfig, Device, SgdConfig};
use fovea_test_support::{TestResult, golden, test_device};
use nn_layers::{Adam, Optimizer, Sgd};

fn optimizer_cases_match_pytorch(dev: &Device) -> TestResult {
    golden::replay(dev, "optimizer", |dev, case| -> TestResult {
        let p = Param::new(dev.upload(case.tensor("w")?)?);
        let params = vec![("w".to_string(), p.clone())];
        let lr = case.param_f64("lr")? as f32;
        let weight_decay = case.param_f64("weight_decay")? as f32;
        let mut opt: Box<dyn Optimizer> = match case.param_str("optimizer")? {
            "sgd" => Box::new(Sgd::new(
                dev,
                params,
                SgdConfig {
                    lr,
                    momentum: case.param_f64("momentum")? as f32,
                    weight_decay,
                    nesterov: case.param_bool("nesterov")?,
                },
            )?),
            "adam" => {
                let [b1, b2] = case.param_f64_2("betas")?;
                Box::new(Adam::new(
                    dev,
                    params,
                    AdamConfig {
                        lr,
                        beta1: b1 as f32,
                        beta2: b2 as f32,
                        eps: case.param_f64("eps")? as f32,
                        weight_decay,
                    },
                )?)
            }
            other => return Err(format!("unknown optimizer {other}").into()),
        };
        for s in 0..case.param_usize("steps")? {
            // The stored gradient, delivered as backward's result for the parameter's leaf.
            let tape = Tape::new(dev);
            let grads = tape
                .param(&p)
                .backward_with(dev.upload(case.tensor(&format!("grad.{s}"))?)?)?;
            opt.step(&grads)?;
            case.compare(&format!("w.{s}"), &dev.to_host(&p.value())?)
                .map_err(|e| format!("{}: {e}", case.name))?;
        }
        Ok(())
    })
}
test_device!(optimizer_cases_match_pytorch);
