//! Composable modules: custom structs get nested names, state dicts with buffers, checkpoints,
//! train/eval and RNG state from `visit` alone; models and parameters are `Send`.

use autograd::{Param, Tape};
use conv_kernels::{Conv2dSpec, Device, SgdConfig};
use fovea_test_support::test_device;
use nn_layers::checkpoint::{self, TrainingState};
use nn_layers::{
    Buffer, BufferKind, Conv2d, Dropout, Flatten, Linear, Module, ModuleVisitor, NnError,
    Optimizer, ReLU, Result, Sequential, Sgd, StateTensor, TrainingFlag, Var, lenet, loss,
};
use tensor::{FloatStorage, NamedTensors, SeededRng, Tensor, TensorFile};

type R = std::result::Result<(), Box<dyn std::error::Error>>;

/// Two 3x3 convolutions (same channels, padding 1), dropout, and the skip connection.
struct Residual {
    conv1: Conv2d,
    conv2: Conv2d,
    drop: Dropout,
}

impl Residual {
    fn new(dev: &Device, rng: &mut SeededRng, channels: usize, seed: u64) -> Result<Self> {
        let spec = Conv2dSpec::new(1, 1);
        Ok(Self {
            conv1: Conv2d::new(dev, rng, channels, channels, 3, spec)?,
            conv2: Conv2d::new(dev, rng, channels, channels, 3, spec)?,
            drop: Dropout::new(0.5, seed)?,
        })
    }
}

impl Module for Residual {
    fn kind(&self) -> &'static str {
        "Residual"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        let h = self.conv1.forward(x)?.relu()?;
        let h = self.drop.forward(&self.conv2.forward(&h)?)?;
        Ok(h.add(x)?.relu()?)
    }
    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.child("conv1", &self.conv1);
        v.child("conv2", &self.conv2);
        v.child("drop", &self.drop);
    }
}

/// Batch-norm-like state under PyTorch's names: counts batches and moves `running_mean` by one
/// per training forward pass; the identity on values.
struct Stats {
    running_mean: Buffer,
    running_var: Buffer,
    num_batches_tracked: Buffer,
    training: TrainingFlag,
}

impl Stats {
    fn new(dev: &Device, channels: usize) -> Result<Self> {
        Ok(Self {
            running_mean: Buffer::new(dev.zeros(&[channels])?),
            running_var: Buffer::new(dev.full(&[channels], 1.0)?),
            num_batches_tracked: Buffer::scalar_i64(0),
            training: TrainingFlag::new(),
        })
    }
}

impl Module for Stats {
    fn kind(&self) -> &'static str {
        "Stats"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        if self.training.get() {
            let n = self.num_batches_tracked.get_i64()?;
            self.num_batches_tracked.set_i64(n + 1)?;
            let dev = x.device();
            let m = self.running_mean.tensor()?;
            self.running_mean
                .set(dev.add(&m, &dev.full(m.dims(), 1.0)?)?)?;
        }
        Ok(x.clone())
    }
    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.training_flag(&self.training);
        v.buffer("running_mean", &self.running_mean);
        v.buffer("running_var", &self.running_var);
        v.buffer("num_batches_tracked", &self.num_batches_tracked);
    }
}

/// A user-defined model: a plain struct of children, one of them a `Sequential`.
struct Net {
    block: Residual,
    bn: Stats,
    head: Sequential,
}

impl Net {
    fn new(dev: &Device, seed: u64) -> Result<Self> {
        let rng = &mut SeededRng::new(seed);
        Ok(Self {
            block: Residual::new(dev, rng, 2, seed)?,
            bn: Stats::new(dev, 2)?,
            head: Sequential::new()
                .with(Flatten)
                .with(Linear::new(dev, rng, 2 * 4 * 4, 3)?),
        })
    }
}

impl Module for Net {
    fn kind(&self) -> &'static str {
        "Net"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        self.head
            .forward(&self.bn.forward(&self.block.forward(x)?)?)
    }
    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.child("block", &self.block);
        v.child("bn", &self.bn);
        v.child("head", &self.head);
    }
}

fn input(dev: &Device, tape: &Tape, seed: u64) -> Var {
    let x = Tensor::rand_uniform(&[2, 2, 4, 4], -1.0, 1.0, &mut SeededRng::new(seed)).unwrap();
    tape.constant(dev.upload(&x).unwrap())
}

/// Compile-time proof that models, their parts and parameters can move to another thread.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    fn returns_send<T: Send, A, B, E>(_: fn(A, B) -> std::result::Result<T, E>) {}
    returns_send(lenet::seed);
    returns_send(lenet::modern);
    assert_send::<Sequential>();
    assert_send::<Box<dyn Module>>();
    assert_send::<Residual>();
    assert_send::<Net>();
    assert_send::<Dropout>();
    assert_send_sync::<Param>();
    assert_send_sync::<Buffer>();
    assert_send_sync::<TrainingFlag>();
    assert_send_sync::<nn_layers::ModuleRng>();
};

#[test]
fn a_custom_struct_gets_nested_pytorch_names() {
    let dev = Device::cpu();
    let net = Net::new(&dev, 0).unwrap();
    let names: Vec<_> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "block.conv1.weight",
            "block.conv1.bias",
            "block.conv2.weight",
            "block.conv2.bias",
            "head.1.weight",
            "head.1.bias",
        ]
    );
    let buffers: Vec<_> = net.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        buffers,
        [
            "bn.running_mean",
            "bn.running_var",
            "bn.num_batches_tracked"
        ]
    );
    assert_eq!(net.rng_states()[0].0, "block.drop.rng");
    assert_eq!(net.num_parameters(), 2 * (2 * 2 * 9 + 2) + 32 * 3 + 3);
    let mut modules = Vec::new();
    net.for_each_module(&mut |n, m| modules.push(format!("{n}:{}", m.kind())));
    assert_eq!(
        modules,
        [
            "block:Residual",
            "block.conv1:Conv2d",
            "block.conv2:Conv2d",
            "block.drop:Dropout",
            "bn:Stats",
            "head:Sequential",
            "head.0:Flatten",
            "head.1:Linear",
        ]
    );
    let sd = net.state_dict(&dev).unwrap();
    assert_eq!(sd.len(), 9);
    assert_eq!(sd["bn.num_batches_tracked"], StateTensor::I64(0));
    assert_eq!(sd["bn.running_var"].dims(), [2]);
}

#[test]
fn train_and_eval_reach_every_nested_module() {
    let dev = Device::cpu();
    let mut net = Net::new(&dev, 1).unwrap();
    assert_eq!(net.training_mode(), Some(true));
    net.eval();
    assert_eq!(net.training_mode(), Some(false));
    assert!(!net.block.drop.is_training() && !net.bn.training.get());
    assert!(!net.head.is_training());
    // In eval the dropout is the identity and the statistics stay put: two runs agree.
    let tape = Tape::new(&dev);
    let x = input(&dev, &tape, 5);
    let a = dev.to_host(net.forward(&x).unwrap().value()).unwrap();
    let b = dev.to_host(net.forward(&x).unwrap().value()).unwrap();
    assert_eq!(a, b);
    assert_eq!(net.bn.num_batches_tracked.get_i64().unwrap(), 0);
    net.train();
    assert!(net.block.drop.is_training() && net.bn.training.get());
    net.forward(&x).unwrap();
    assert_eq!(net.bn.num_batches_tracked.get_i64().unwrap(), 1);
    // A module without any flag has no mode to report.
    assert_eq!(ReLU.training_mode(), None);
}

fn buffers_round_trip_through_state_dict_and_load_state_dict(dev: &Device) -> R {
    let net = Net::new(dev, 2)?;
    let tape = Tape::new(dev);
    for s in 0..3 {
        net.forward(&input(dev, &tape, s))?;
    }
    let sd = net.state_dict(dev)?;
    assert_eq!(sd["bn.num_batches_tracked"].as_i64(), Some(3));
    assert_eq!(sd["bn.running_mean"].as_f32().unwrap().data(), [3.0, 3.0]);

    let other = Net::new(dev, 3)?;
    assert_ne!(other.state_dict(dev)?, sd);
    other.load_state_dict(dev, &sd)?;
    assert_eq!(other.state_dict(dev)?, sd);
    assert_eq!(other.bn.num_batches_tracked.get_i64()?, 3);

    // Strict: a missing buffer, an extra one and a counter given as a float, all at once;
    // nothing changes.
    let fresh = Net::new(dev, 4)?;
    let before = fresh.state_dict(dev)?;
    let mut bad = sd.clone();
    bad.remove("bn.running_var");
    bad.insert("bn.num_batches_tracked".into(), Tensor::zeros(&[])?.into());
    bad.insert("bn2.running_mean".into(), Tensor::zeros(&[2])?.into());
    let err = fresh.load_state_dict(dev, &bad).unwrap_err();
    let NnError::StateMismatch { mismatches, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(mismatches.missing, ["bn.running_var"]);
    assert_eq!(mismatches.unexpected, ["bn2.running_mean"]);
    assert_eq!(
        mismatches.wrong_dtype,
        [(
            "bn.num_batches_tracked".to_string(),
            "F32".to_string(),
            "I64".to_string()
        )]
    );
    assert_eq!(fresh.state_dict(dev)?, before);
    Ok(())
}
test_device!(buffers_round_trip_through_state_dict_and_load_state_dict);

fn buffers_params_and_rng_round_trip_through_a_checkpoint_file(dev: &Device) -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("net.safetensors");
    let net = Net::new(dev, 5)?;
    let mut opt = Sgd::new(dev, net.named_parameters(), SgdConfig::plain(0.1))?;
    let labels = dev.upload_indices(&[0, 2])?;
    for s in 0..2 {
        let tape = Tape::new(dev);
        let out = loss::cross_entropy(&net.forward(&input(dev, &tape, s))?, &labels)?;
        opt.step(&out.loss.backward()?)?;
    }
    checkpoint::save(
        &path,
        dev,
        &net,
        Some(&opt),
        &TrainingState::default(),
        FloatStorage::F32,
    )?;
    // PyTorch's layout: the counter is an int64 scalar.
    let file = TensorFile::open(&path)?;
    assert_eq!(file.dtype("bn.num_batches_tracked")?, "I64");
    assert!(file.dims("bn.num_batches_tracked")?.is_empty());
    assert_eq!(file.i64("bn.num_batches_tracked")?.1, [2]);
    assert_eq!(file.dtype("bn.running_mean")?, "F32");

    let net2 = Net::new(dev, 6)?;
    let mut opt2 = Sgd::new(dev, net2.named_parameters(), SgdConfig::plain(0.1))?;
    checkpoint::load(&path, dev, &net2, Some(&mut opt2))?;
    assert_eq!(net2.state_dict(dev)?, net.state_dict(dev)?);
    assert_eq!(net2.rng_states(), net.rng_states());
    // Same generator state: the next dropout masks, hence outputs, are identical.
    let tape = Tape::new(dev);
    let x = input(dev, &tape, 9);
    assert_eq!(
        dev.to_host(net.forward(&x)?.value())?,
        dev.to_host(net2.forward(&x)?.value())?
    );
    Ok(())
}
test_device!(buffers_params_and_rng_round_trip_through_a_checkpoint_file);

/// `net`'s state dict written as `safetensors.torch.save_file` does, after `edit`.
fn torch_file(
    dev: &Device,
    net: &Net,
    edit: impl FnOnce(&mut nn_layers::StateDict),
) -> NamedTensors {
    let mut sd = net.state_dict(dev).unwrap();
    edit(&mut sd);
    let mut out = NamedTensors::new();
    out.set_metadata("format", "pt");
    for (n, t) in &sd {
        match t {
            StateTensor::F32(t) => out.insert(n.clone(), t).unwrap(),
            StateTensor::I64(v) => out.insert_i64(n.clone(), &[], &[*v]).unwrap(),
        }
    }
    out
}

#[test]
fn a_pytorch_file_with_missing_or_extra_buffers_lists_them() -> R {
    let dev = Device::cpu();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("torch.safetensors");
    let src = Net::new(&dev, 7)?;
    src.bn.num_batches_tracked.set_i64(41)?;

    // A complete file loads, buffers included.
    torch_file(&dev, &src, |_| {}).write(&path)?;
    let net = Net::new(&dev, 8)?;
    checkpoint::load(&path, &dev, &net, None)?;
    assert_eq!(net.state_dict(&dev)?, src.state_dict(&dev)?);
    assert_eq!(net.bn.num_batches_tracked.get_i64()?, 41);

    torch_file(&dev, &src, |sd| {
        sd.remove("bn.running_mean");
        sd.remove("bn.num_batches_tracked");
        sd.insert("bn.momentum".into(), Tensor::zeros(&[1]).unwrap().into());
        sd.insert("block.bn1.num_batches_tracked".into(), 3i64.into());
    })
    .write(&path)?;
    let fresh = Net::new(&dev, 9)?;
    let before = fresh.state_dict(&dev)?;
    let err = checkpoint::load(&path, &dev, &fresh, None).unwrap_err();
    let msg = err.to_string();
    for part in [
        "missing: bn.running_mean, bn.num_batches_tracked",
        "unexpected: block.bn1.num_batches_tracked, bn.momentum",
        "torch.safetensors",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    assert_eq!(
        fresh.state_dict(&dev)?,
        before,
        "a failed load changed the model"
    );

    // The counter stored as a float is a dtype error naming what was expected.
    torch_file(&dev, &src, |sd| {
        sd.insert(
            "bn.num_batches_tracked".into(),
            Tensor::zeros(&[]).unwrap().into(),
        );
    })
    .write(&path)?;
    let msg = checkpoint::load(&path, &dev, &fresh, None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("wrong dtype: bn.num_batches_tracked (dtype F32, expected I64)"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn a_model_moves_to_another_thread_and_trains_there() {
    let dev = Device::cpu();
    let net = lenet::modern(&dev, &mut SeededRng::new(0)).unwrap();
    let before = net.state_dict(&dev).unwrap();
    let worker_dev = dev.clone();
    let net = std::thread::spawn(move || {
        let dev = worker_dev;
        let mut opt = Sgd::new(&dev, net.named_parameters(), SgdConfig::plain(0.1)).unwrap();
        let x = dev.zeros(&[2, 1, 28, 28]).unwrap();
        let labels = dev.upload_indices(&[1, 2]).unwrap();
        let tape = Tape::new(&dev);
        let out = loss::cross_entropy(&net.forward(&tape.constant(x)).unwrap(), &labels).unwrap();
        opt.step(&out.loss.backward().unwrap()).unwrap();
        net
    })
    .join()
    .unwrap();
    assert_ne!(net.state_dict(&dev).unwrap(), before);
}

#[test]
fn summaries_dry_run_custom_children_without_changing_them() {
    let dev = Device::cpu();
    let rng = &mut SeededRng::new(10);
    let block = Residual::new(&dev, rng, 2, 3).unwrap();
    let mut net = Sequential::new()
        .with(block)
        .with(Stats::new(&dev, 2).unwrap())
        .with(Flatten)
        .with(Linear::new(&dev, rng, 32, 3).unwrap());
    net.train();
    let rngs = net.rng_states();
    let rows = net.layer_summaries(&dev, &[5, 2, 4, 4]).unwrap();
    let dims: Vec<_> = rows.iter().map(|r| r.output_dims.clone()).collect();
    assert_eq!(
        dims,
        [vec![5, 2, 4, 4], vec![5, 2, 4, 4], vec![5, 32], vec![5, 3]]
    );
    let flops: Vec<_> = rows.iter().map(|r| r.flops).collect();
    assert_eq!(flops, [None, None, Some(0), Some(2 * 5 * 3 * 32 + 5 * 3)]);
    assert_eq!(rows[0].params, 2 * (2 * 2 * 9 + 2));
    assert_eq!(rows[0].kind, "Residual");
    // Nothing the dry run touched changed: mode, generators, statistics.
    assert_eq!(net.training_mode(), Some(true));
    assert_eq!(net.rng_states(), rngs);
    let counter = &net.named_buffers()[2];
    assert_eq!(counter.0, "1.num_batches_tracked");
    assert_eq!(counter.1.get_i64().unwrap(), 0);
    // No static information for the whole container, since a child lacks it.
    assert!(net.layer_info().is_none());
}

/// A module that names one parameter twice, and one that ties a parameter under two names.
struct Named {
    a: Param,
    b: Param,
    same_name: bool,
}

impl Module for Named {
    fn kind(&self) -> &'static str {
        "Named"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.clone())
    }
    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.param("w", &self.a);
        v.param(if self.same_name { "w" } else { "tied" }, &self.b);
    }
}

#[test]
fn duplicate_names_are_an_error_and_tied_parameters_count_once() {
    let dev = Device::cpu();
    let p = Param::new(dev.zeros(&[3]).unwrap());
    let dup = Named {
        a: p.clone(),
        b: Param::new(dev.zeros(&[3]).unwrap()),
        same_name: true,
    };
    let err = dup.state_dict(&dev).unwrap_err();
    assert!(
        matches!(&err, NnError::DuplicateName { name } if name == "w"),
        "{err}"
    );

    let tied = Named {
        a: p.clone(),
        b: p,
        same_name: false,
    };
    assert_eq!(tied.named_parameters().len(), 1);
    assert_eq!(tied.num_parameters(), 3);
    let sd = tied.state_dict(&dev).unwrap();
    assert_eq!(sd.keys().collect::<Vec<_>>(), ["tied", "w"]);
    tied.load_state_dict(&dev, &sd).unwrap();
}

#[test]
fn boxed_modules_and_buffer_kinds() {
    let dev = Device::cpu();
    let boxed: Box<dyn Module> = Box::new(Net::new(&dev, 11).unwrap());
    assert_eq!(boxed.named_parameters()[0].0, "block.conv1.weight");
    let net = Sequential::new().with(boxed);
    assert_eq!(net.named_buffers()[0].0, "0.bn.running_mean");

    let f = Buffer::new(dev.zeros(&[2, 3]).unwrap());
    let i = Buffer::scalar_i64(7);
    assert_eq!((f.kind(), i.kind()), (BufferKind::F32, BufferKind::I64));
    assert_eq!((f.dims(), i.dims()), (vec![2, 3], vec![]));
    assert!(
        f.get_i64().is_err() && i.tensor().is_err() && i.set(dev.zeros(&[1]).unwrap()).is_err()
    );
    assert!(f.set(dev.zeros(&[3, 2]).unwrap()).is_err());
    assert!(f.set_i64(1).is_err());
    f.update(|t| *t = dev.full(&[2, 3], 2.0).unwrap()).unwrap();
    assert_eq!(dev.to_host(&f.tensor().unwrap()).unwrap().sum(), 12.0);
    let shared = i.clone();
    shared.set_i64(8).unwrap();
    assert_eq!(i.get_i64().unwrap(), 8);
    assert!(i.ptr_eq(&shared));
}

#[test]
fn an_optimizer_never_sees_buffers() {
    let dev = Device::cpu();
    let net = Net::new(&dev, 12).unwrap();
    let opt = Sgd::new(&dev, net.named_parameters(), SgdConfig::plain(0.1)).unwrap();
    assert!(opt.params().iter().all(|(n, _)| !n.starts_with("bn.")));
    assert_eq!(opt.params().len(), 6);
}
