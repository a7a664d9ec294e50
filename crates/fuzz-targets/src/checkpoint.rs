//! The `checkpoint` target: a safetensors file given to `lenet train --resume`, `eval`,
//! `predict` or `inspect`, loaded into every registered model (LeNet seed and modern, NiN,
//! ResNet) with the optimizer its recipe trains with, and into two tiny networks (convolution,
//! batch norm, linear) with SGD-momentum and Adam state.
//!
//! The tiny networks are there for speed: their whole checkpoint is about 2 KB, so the fuzzer
//! reaches a complete load (every tensor, every optimizer buffer, the metadata) thousands of
//! times a second, where a registered model's file is 0.25–1.4 MB. The registered models'
//! seeds are cut to the fuzzer's `-max_len`, which keeps their headers (names, shapes, dtypes,
//! offsets): the part a damaged file gets wrong.

use clap::{Parser, ValueEnum};
use conv_kernels::{AdamConfig, Conv2dSpec, Device, SgdConfig};
use lenet_app::cli::{Cli, Command};
use lenet_app::commands::train::build_optimizer;
use lenet_app::config::RunConfig;
use lenet_app::models::ModelKind;
use lenet_app::restore::stored_model;
use nn_layers::layers::{BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential};
use nn_layers::{Adam, Module, Optimizer, Sgd, Tape, checkpoint, loss};
use std::cell::RefCell;
use tensor::{SeededRng, Tensor, TensorFile};

/// A network with the optimizer that trains it, as a checkpoint restores them.
pub struct Trainee {
    /// What the checkpoint's name is in the seed corpus.
    pub name: String,
    /// The network.
    pub net: Box<dyn Module>,
    /// Its optimizer.
    pub optimizer: Box<dyn Optimizer>,
}

/// `kind` and its recipe's optimizer on `device`, as `lenet train --model KIND` builds them.
fn registered(kind: ModelKind, device: &Device) -> anyhow::Result<Trainee> {
    let name = kind.name();
    let Command::Train(args) = Cli::try_parse_from(["lenet", "train", "--model", &name])?.command
    else {
        anyhow::bail!("`lenet train` did not parse as the train command");
    };
    let cfg = RunConfig::from_args(&args)?;
    let net = kind.build(device, &mut SeededRng::new(0))?;
    let optimizer = build_optimizer(&cfg, device, &net)?;
    Ok(Trainee {
        name,
        net: Box::new(net.into_layers()),
        optimizer,
    })
}

/// Input side of the tiny networks' images.
const TINY_SIDE: usize = 4;

/// A tiny network on `TINY_SIDE`² single-channel images: conv 1→2 (3×3, padding 1), batch
/// norm, ReLU, flatten, linear to 3 classes; with SGD (Nesterov momentum) or Adam.
fn tiny(adam: bool, device: &Device) -> anyhow::Result<Trainee> {
    let mut rng = SeededRng::new(1);
    let net = Sequential::new()
        .with(Conv2d::new(
            device,
            &mut rng,
            1,
            2,
            3,
            Conv2dSpec::new(1, 1),
        )?)
        .with(BatchNorm2d::new(device, 2)?)
        .with(ReLU)
        .with(Flatten)
        .with(Linear::new(device, &mut rng, 2 * TINY_SIDE * TINY_SIDE, 3)?);
    let params = net.named_parameters();
    let optimizer: Box<dyn Optimizer> = if adam {
        Box::new(Adam::new(device, params, AdamConfig::default())?)
    } else {
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: true,
        };
        Box::new(Sgd::new(device, params, cfg)?)
    };
    let name = if adam { "tiny-adam" } else { "tiny-sgd" }.to_string();
    Ok(Trainee {
        name,
        net: Box::new(net),
        optimizer,
    })
}

/// Every network the target loads into: the registered models, then the tiny ones.
pub fn trainees(device: &Device) -> anyhow::Result<Vec<Trainee>> {
    let mut out = ModelKind::value_variants()
        .iter()
        .map(|&k| registered(k, device))
        .collect::<anyhow::Result<Vec<_>>>()?;
    out.push(tiny(false, device)?);
    out.push(tiny(true, device)?);
    Ok(out)
}

/// Trains a tiny trainee for one step on random data, so that its optimizer has state to save.
pub fn step_tiny(t: &mut Trainee, device: &Device) -> anyhow::Result<()> {
    let mut rng = SeededRng::new(2);
    let images = Tensor::rand_uniform(&[4, 1, TINY_SIDE, TINY_SIDE], 0.0, 1.0, &mut rng)?;
    let x = device.upload(&images)?;
    let labels = device.upload_indices(&[0, 1, 2, 1])?;
    let tape = Tape::new(device);
    let out = loss::cross_entropy(&t.net.forward(&tape.constant(x))?, &labels)?;
    let grads = out.loss.backward()?;
    t.optimizer.step(&grads)?;
    Ok(())
}

thread_local! {
    /// Every trainee, built once per thread (building them per input would dominate).
    static TRAINEES: RefCell<Vec<Trainee>> =
        RefCell::new(trainees(&Device::cpu()).expect("every fuzz trainee builds"));
}

/// Validates the bytes as a safetensors file, reads which model its metadata names, and loads
/// it into every trainee: with its optimizer (resume) and without (eval, predict, inspect).
pub fn load(data: &[u8]) {
    let Ok(file) = TensorFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = stored_model(&file, None);
    let device = Device::cpu();
    TRAINEES.with_borrow_mut(|trainees| {
        for t in trainees.iter_mut() {
            let _ = checkpoint::load_file(&file, &device, &*t.net, Some(&mut *t.optimizer));
            let _ = checkpoint::load_file(&file, &device, &*t.net, None);
        }
    });
}
