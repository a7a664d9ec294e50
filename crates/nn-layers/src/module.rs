//! The [`Module`] trait, the [`ModuleVisitor`] a module names its state through, and everything
//! provided on top of that naming: parameter and buffer names, `state_dict`, train/eval, RNG
//! state.

use crate::buffer::{Buffer, BufferKind, StateDict, StateTensor};
use crate::error::{Mismatches, NnError, Result};
use crate::summary::LayerInfo;
use autograd::{Param, Var};
use conv_kernels::{Activation, Device, DeviceTensor, Pool2dSpec};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use tensor::{RngState, SeededRng};

/// A layer or a model: a forward pass over [`Var`]s, plus one method, [`Module::visit`], that
/// names its parameters, buffers, generators and children once. Everything else (PyTorch
/// names such as `layer1.0.conv1.weight`, [`Module::state_dict`], [`Module::load_state_dict`],
/// checkpoints, [`Module::train`]/[`Module::eval`], RNG state, parameter counts) is provided
/// on top of `visit`; the provided methods are not meant to be overridden.
///
/// Modules are `Send + Sync`: a model can be moved to another thread, and borrowed by one
/// (a training step run on the CPU backend's workers, `Device::run_on_workers`). State that a
/// forward pass changes (buffers, generators, the training flag) uses thread-safe interior
/// mutability, so `forward` takes `&self`.
///
/// A custom residual block (two convolutions and the skip connection), with its names,
/// state dict and train/eval switching for free:
///
/// ```
/// use conv_kernels::{Conv2dSpec, Device};
/// use nn_layers::{Conv2d, Dropout, Module, ModuleVisitor, Result, Var};
/// use tensor::SeededRng;
///
/// struct Residual { conv1: Conv2d, conv2: Conv2d, drop: Dropout }
///
/// impl Module for Residual {
///     fn kind(&self) -> &'static str { "Residual" }
///     fn forward(&self, x: &Var) -> Result<Var> {
///         let h = self.conv1.forward(x)?.relu()?;
///         let h = self.drop.forward(&self.conv2.forward(&h)?)?;
///         Ok(h.add(x)?.relu()?)
///     }
///     fn visit(&self, v: &mut dyn ModuleVisitor) {
///         v.child("conv1", &self.conv1);
///         v.child("conv2", &self.conv2);
///         v.child("drop", &self.drop);
///     }
/// }
///
/// let (dev, rng) = (Device::cpu(), &mut SeededRng::new(0));
/// let conv = |rng: &mut SeededRng| Conv2d::new(&dev, rng, 4, 4, 3, Conv2dSpec::new(1, 1));
/// let mut block = Residual { conv1: conv(rng)?, conv2: conv(rng)?, drop: Dropout::new(0.1, 7)? };
///
/// let names: Vec<_> = block.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]);
/// assert_eq!(block.rng_states()[0].0, "drop.rng");
/// block.eval(); // reaches the dropout inside
/// assert_eq!(block.training_mode(), Some(false));
/// let sd = block.state_dict(&dev)?;
/// block.load_state_dict(&dev, &sd)?;
/// let tape = autograd::Tape::new(&dev);
/// let x = tape.constant(dev.zeros(&[2, 4, 8, 8])?);
/// assert_eq!(block.forward(&x)?.dims(), [2, 4, 8, 8]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Module: Send + Sync {
    /// The layer's kind as PyTorch names it (`Conv2d`, `Linear`, `Sigmoid`, ...).
    fn kind(&self) -> &'static str;

    /// Runs the module on `x`, recording on `x`'s tape.
    fn forward(&self, x: &Var) -> Result<Var>;

    /// When the module is an element-wise activation (`Sigmoid`, `ReLU`, `Tanh`), which one:
    /// a container may then fuse it into the layer before it ([`Module::forward_activation`]).
    fn as_activation(&self) -> Option<Activation> {
        None
    }

    /// `act(self.forward(x))` as one fused op, when the module can fuse an activation into its
    /// output (`Conv2d`, `Linear` and `BatchNorm2d` apply it as they store their output, and
    /// fold its derivative into their backward pass); `None`, the default, when it cannot, and the
    /// caller runs the two separately. [`crate::layers::Sequential`] fuses every layer followed
    /// by an activation this way.
    fn forward_activation(&self, x: &Var, act: Activation) -> Option<Result<Var>> {
        let _ = (x, act);
        None
    }

    /// When the module is a pooling layer (`MaxPool2d`, `AvgPool2d`), its settings: a
    /// container may then fuse it with the layer and activation before it
    /// ([`Module::forward_activation_pool`]).
    fn as_pool(&self) -> Option<Pool2dSpec> {
        None
    }

    /// `pool(act(self.forward(x)))` as one fused op, when the module can (`Conv2d`: the
    /// pooling's and the activation's gradients then take one pass over each plane); `None`,
    /// the default, when it cannot. [`crate::layers::Sequential`] fuses every layer followed by
    /// an activation and a pooling layer this way.
    fn forward_activation_pool(
        &self,
        x: &Var,
        act: Activation,
        pool: &Pool2dSpec,
    ) -> Option<Result<Var>> {
        let _ = (x, act, pool);
        None
    }

    /// Names everything the module owns, once: its own parameters, buffers, generators and
    /// training flag, and its children (whose names become prefixes: child `conv1`'s
    /// `weight` is `conv1.weight`). Visit in a fixed order: it is the order of
    /// [`Module::named_parameters`] and of error reports.
    fn visit(&self, v: &mut dyn ModuleVisitor);

    /// Shape, FLOPs and window information for summaries, when the module can tell them
    /// without running (the built-in layers do). `None`, the default, makes summaries find
    /// the output shape by a dry run instead.
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        None
    }

    /// The trainable parameters with their full names (`1.weight`, `block.conv1.bias`, ...),
    /// each once even when it is reachable under several names (tied weights).
    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut seen = Vec::<Param>::new();
        let mut out = Vec::new();
        walk(self, &mut |name, item| {
            if let Item::Param(p) = item
                && !seen.iter().any(|s| s.ptr_eq(p))
            {
                seen.push(p.clone());
                out.push((name.to_string(), p.clone()));
            }
        });
        out
    }

    /// The buffers with their full names (`bn1.running_mean`, `bn1.num_batches_tracked`, ...).
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut out = Vec::new();
        walk(self, &mut |name, item| {
            if let Item::Buffer(b) = item {
                out.push((name.to_string(), b.clone()));
            }
        });
        out
    }

    /// Total number of trainable values (tied parameters counted once).
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, p)| p.numel()).sum()
    }

    /// Calls `f` on every descendant module, depth first, with its full name (`layer1`,
    /// `layer1.0`, `layer1.0.conv1`, ...); the module itself is not included.
    fn for_each_module(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        walk(self, &mut |name, item| {
            if let Item::Module(m) = item {
                f(name, m);
            }
        });
    }

    /// Switches every training flag in the module between training and evaluation
    /// behaviour (PyTorch `train(mode)`).
    fn set_training(&mut self, training: bool) {
        walk(self, &mut |_, item| {
            if let Item::Flag(flag) = item {
                flag.set(training);
            }
        });
    }

    /// Training mode on (PyTorch `train()`), the default for new modules.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Training mode off (PyTorch `eval()`): dropout passes values through.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// The mode set by [`Module::train`]/[`Module::eval`] (the first training flag reached);
    /// `None` when no part of the module behaves differently in training.
    fn training_mode(&self) -> Option<bool> {
        let mut mode = None;
        walk(self, &mut |_, item| {
            if let Item::Flag(flag) = item {
                mode.get_or_insert(flag.get());
            }
        });
        mode
    }

    /// The states of the generators the module owns (dropout masks), by full name
    /// (`3.rng`), for checkpoints.
    fn rng_states(&self) -> Vec<(String, RngState)> {
        let mut out = Vec::new();
        walk(self, &mut |name, item| {
            if let Item::Rng(r) = item {
                out.push((name.to_string(), r.state()));
            }
        });
        out
    }

    /// Restores a generator saved by [`Module::rng_states`]; false when `name` is not one.
    fn set_rng_state(&self, name: &str, state: RngState) -> bool {
        let mut found = false;
        walk(self, &mut |n, item| {
            if let Item::Rng(r) = item
                && n == name
            {
                r.set_state(state);
                found = true;
            }
        });
        found
    }

    /// The parameters and buffers copied to the host, by full name (PyTorch
    /// `state_dict()`); tied parameters appear under each of their names.
    fn state_dict(&self, device: &Device) -> Result<StateDict> {
        named_state(self)?
            .into_iter()
            .map(|(name, entry)| {
                let t = match entry {
                    StateEntry::Param(p) => StateTensor::F32(device.to_host(&p.value())?),
                    StateEntry::Buffer(b) => b.to_host(device)?,
                };
                Ok((name, t))
            })
            .collect()
    }

    /// Loads every parameter and buffer from `state` (PyTorch
    /// `load_state_dict(strict=True)`): all missing, unexpected, mis-shaped and mis-typed
    /// names are reported in one [`NnError::StateMismatch`], and nothing is changed unless
    /// everything matches.
    fn load_state_dict(&self, device: &Device, state: &StateDict) -> Result<()> {
        let entries = named_state(self)?;
        let mut mismatches = Mismatches::default();
        for (name, entry) in &entries {
            let Some(t) = state.get(name) else {
                mismatches.missing.push(name.clone());
                continue;
            };
            let want = entry.kind();
            if t.kind() != want {
                mismatches.wrong_dtype.push((
                    name.clone(),
                    t.kind().dtype().to_string(),
                    want.dtype().to_string(),
                ));
            } else if t.dims() != entry.dims().as_slice() {
                mismatches
                    .misshaped
                    .push((name.clone(), entry.dims(), t.dims().to_vec()));
            }
        }
        let known: HashSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        mismatches.unexpected = state
            .keys()
            .filter(|n| !known.contains(n.as_str()))
            .cloned()
            .collect();
        if !mismatches.is_empty() {
            return Err(NnError::StateMismatch {
                source_name: "state dict".into(),
                mismatches: Box::new(mismatches),
            });
        }
        // Upload everything before changing anything, so a device error leaves the model as
        // it was.
        let values = entries
            .iter()
            .map(|(name, _)| {
                Ok(match &state[name] {
                    StateTensor::F32(t) => LoadValue::F32(device.upload(t)?),
                    StateTensor::I64(v) => LoadValue::I64(*v),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for ((_, entry), value) in entries.iter().zip(values) {
            entry.store(value)?;
        }
        Ok(())
    }
}

/// Receives what a module names in [`Module::visit`]. The provided [`Module`] methods walk a
/// model with their own visitors, building full names (`layer1.0.conv1.weight`); implement
/// one yourself only to walk a model in a way they do not cover.
pub trait ModuleVisitor {
    /// A trainable parameter named `name` (`weight`, `bias`).
    fn param(&mut self, name: &str, param: &Param);

    /// A non-trainable buffer named `name` (`running_mean`, `num_batches_tracked`).
    fn buffer(&mut self, name: &str, buffer: &Buffer);

    /// A random-number generator named `name` (`rng`), saved in checkpoints.
    fn rng(&mut self, name: &str, rng: &ModuleRng);

    /// The module's train/eval switch, set by [`Module::train`] and [`Module::eval`].
    fn training_flag(&mut self, flag: &TrainingFlag);

    /// A child module named `name` (`conv1`, `0`); its names are prefixed with `name.`.
    fn child(&mut self, name: &str, child: &dyn Module);
}

/// A module's train/eval switch (PyTorch's `Module.training`), `Send + Sync`; a module whose
/// forward depends on the mode (dropout, batch norm) holds one and names it in
/// [`Module::visit`] with [`ModuleVisitor::training_flag`]. Starts in training mode.
#[derive(Debug)]
pub struct TrainingFlag(AtomicBool);

impl TrainingFlag {
    /// A flag in training mode.
    pub fn new() -> Self {
        Self(AtomicBool::new(true))
    }

    /// True in training mode.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the mode (`true`: training).
    pub fn set(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed);
    }
}

impl Default for TrainingFlag {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for TrainingFlag {
    fn clone(&self) -> Self {
        Self(AtomicBool::new(self.get()))
    }
}

/// A seeded generator owned by a module (dropout masks), `Send + Sync` and drawn from through
/// `&self`; named in [`Module::visit`] with [`ModuleVisitor::rng`], its state is saved in
/// checkpoints.
#[derive(Debug)]
pub struct ModuleRng(Mutex<SeededRng>);

impl ModuleRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(SeededRng::new(seed)))
    }

    /// Where it stands.
    pub fn state(&self) -> RngState {
        self.with(|r| r.state())
    }

    /// Moves it to a saved state.
    pub fn set_state(&self, state: RngState) {
        self.with(|r| *r = SeededRng::from_state(state));
    }

    /// Runs `f` with the generator (locked meanwhile).
    pub fn with<R>(&self, f: impl FnOnce(&mut SeededRng) -> R) -> R {
        // A panic inside `f` leaves a valid generator, so a poisoned lock is still used.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Clone for ModuleRng {
    fn clone(&self) -> Self {
        Self(Mutex::new(SeededRng::from_state(self.state())))
    }
}

/// A box of a module is a module (models built at run time, `Box<dyn Module>`).
impl<M: Module + ?Sized> Module for Box<M> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        (**self).forward(x)
    }
    fn as_activation(&self) -> Option<Activation> {
        (**self).as_activation()
    }
    fn forward_activation(&self, x: &Var, act: Activation) -> Option<Result<Var>> {
        (**self).forward_activation(x, act)
    }
    fn as_pool(&self) -> Option<Pool2dSpec> {
        (**self).as_pool()
    }
    fn forward_activation_pool(
        &self,
        x: &Var,
        act: Activation,
        pool: &Pool2dSpec,
    ) -> Option<Result<Var>> {
        (**self).forward_activation_pool(x, act, pool)
    }
    fn visit(&self, v: &mut dyn ModuleVisitor) {
        (**self).visit(v)
    }
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        (**self).layer_info()
    }
}

/// One thing a module names, seen by [`walk`].
pub(crate) enum Item<'a> {
    Param(&'a Param),
    Buffer(&'a Buffer),
    Rng(&'a ModuleRng),
    Flag(&'a TrainingFlag),
    Module(&'a dyn Module),
}

/// The visitor behind every provided method: builds full names with a prefix stack.
struct Walker<'f> {
    prefix: String,
    f: &'f mut dyn FnMut(&str, Item<'_>),
}

impl Walker<'_> {
    fn emit(&mut self, name: &str, item: Item<'_>) {
        let len = self.prefix.len();
        self.prefix.push_str(name);
        (self.f)(&self.prefix, item);
        self.prefix.truncate(len);
    }
}

impl ModuleVisitor for Walker<'_> {
    fn param(&mut self, name: &str, param: &Param) {
        self.emit(name, Item::Param(param));
    }
    fn buffer(&mut self, name: &str, buffer: &Buffer) {
        self.emit(name, Item::Buffer(buffer));
    }
    fn rng(&mut self, name: &str, rng: &ModuleRng) {
        self.emit(name, Item::Rng(rng));
    }
    fn training_flag(&mut self, flag: &TrainingFlag) {
        self.emit("", Item::Flag(flag));
    }
    fn child(&mut self, name: &str, child: &dyn Module) {
        self.emit(name, Item::Module(child));
        let len = self.prefix.len();
        self.prefix.push_str(name);
        self.prefix.push('.');
        child.visit(self);
        self.prefix.truncate(len);
    }
}

/// Visits `module` and all its descendants, calling `f` with each item's full name.
pub(crate) fn walk<M: Module + ?Sized>(module: &M, f: &mut dyn FnMut(&str, Item<'_>)) {
    module.visit(&mut Walker {
        prefix: String::new(),
        f,
    });
}

/// A parameter or buffer under one full name.
pub(crate) enum StateEntry {
    Param(Param),
    Buffer(Buffer),
}

/// A value uploaded and checked, ready to replace a [`StateEntry`]'s.
pub(crate) enum LoadValue {
    F32(DeviceTensor),
    I64(i64),
}

impl StateEntry {
    pub(crate) fn kind(&self) -> BufferKind {
        match self {
            StateEntry::Param(_) => BufferKind::F32,
            StateEntry::Buffer(b) => b.kind(),
        }
    }

    pub(crate) fn dims(&self) -> Vec<usize> {
        match self {
            StateEntry::Param(p) => p.dims(),
            StateEntry::Buffer(b) => b.dims(),
        }
    }

    /// Replaces the value (kind and shape already checked).
    pub(crate) fn store(&self, value: LoadValue) -> Result<()> {
        match (self, value) {
            (StateEntry::Param(p), LoadValue::F32(t)) => Ok(p.set(t)?),
            (StateEntry::Buffer(b), LoadValue::F32(t)) => b.set(t),
            (StateEntry::Buffer(b), LoadValue::I64(v)) => b.set_i64(v),
            (StateEntry::Param(_), LoadValue::I64(_)) => Err(crate::error::invalid(
                "load_state_dict",
                "an int64 value for a parameter",
            )),
        }
    }
}

/// Every parameter and buffer by full name, in visiting order; a name used twice is an error.
pub(crate) fn named_state<M: Module + ?Sized>(module: &M) -> Result<Vec<(String, StateEntry)>> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    let mut duplicate = None;
    walk(module, &mut |name, item| {
        let entry = match item {
            Item::Param(p) => StateEntry::Param(p.clone()),
            Item::Buffer(b) => StateEntry::Buffer(b.clone()),
            _ => return,
        };
        if !names.insert(name.to_string()) {
            duplicate.get_or_insert_with(|| name.to_string());
        }
        out.push((name.to_string(), entry));
    });
    match duplicate {
        Some(name) => Err(NnError::DuplicateName { name }),
        None => Ok(out),
    }
}
