//! The tape, its variables, trainable parameters and the backward pass.

use crate::error::{AutogradError, Result};
use conv_kernels::{Device, DeviceTensor, KernelError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tensor::Shape;

/// Computes the gradients of an op's inputs from its output gradient (one entry per input,
/// `None` where the input needs none).
pub(crate) type BackwardFn =
    Box<dyn FnOnce(&Device, &DeviceTensor) -> Result<Vec<Option<DeviceTensor>>>>;

/// An op's input gradients when its output gradient is exactly one (the seed of
/// [`Var::backward`]): a loss hands out the gradient it already holds instead of scaling it by
/// a tensor of ones (two kernels that compute nothing).
pub(crate) type UnitBackwardFn = Box<dyn FnOnce() -> Vec<Option<DeviceTensor>>>;

struct Node {
    /// Input node ids (`None` for inputs that need no gradient).
    parents: Vec<Option<usize>>,
    /// `None` for leaves, and for ops whose backward has already run.
    backward: Option<BackwardFn>,
    /// The shortcut for a unit output gradient, where the op has one.
    unit_backward: Option<UnitBackwardFn>,
    leaf: bool,
}

/// Where a backward pass starts.
enum Seed {
    /// The root's gradient is one (of the root's shape).
    Ones(Shape),
    /// The root's gradient is this tensor.
    Given(DeviceTensor),
}

struct TapeInner {
    device: Device,
    nodes: Vec<Node>,
    no_grad_depth: usize,
    params: HashMap<ParamId, usize>,
    backward_done: bool,
}

/// Records differentiable ops run on one device, so that [`Var::backward`] can replay them in
/// reverse. Cloning is cheap (a shared handle). Use one tape per training step.
#[derive(Clone)]
pub struct Tape {
    inner: Rc<RefCell<TapeInner>>,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Tape")
            .field("device", &inner.device)
            .field("nodes", &inner.nodes.len())
            .field("recording", &(inner.no_grad_depth == 0))
            .finish()
    }
}

/// A value on a tape: a device tensor plus, when it needs a gradient, the node that made it.
/// Cloning is cheap.
#[derive(Clone)]
pub struct Var {
    tape: Tape,
    node: Option<usize>,
    value: DeviceTensor,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var")
            .field("shape", self.value.shape())
            .field("node", &self.node)
            .finish()
    }
}

/// Identifies a [`Param`] across tapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

struct ParamInner {
    id: ParamId,
    value: RwLock<DeviceTensor>,
}

/// A trainable tensor owned by a model: it outlives tapes and is updated in place by optimizers.
/// Cloning is cheap and shares the tensor.
///
/// `Param` is `Send + Sync` (an `Arc` around an `RwLock`), so a model holding parameters can be
/// moved to, or shared with, another thread. A training step takes the lock a handful of times
/// (uncontended: one atomic operation each); tapes themselves stay single-threaded.
#[derive(Clone)]
pub struct Param {
    inner: Arc<ParamInner>,
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Param")
            .field("id", &self.inner.id)
            .field("shape", self.read().shape())
            .finish()
    }
}

/// Disables recording on a tape until dropped (see [`Tape::no_grad`]).
#[must_use = "recording resumes as soon as the guard is dropped"]
pub struct NoGradGuard {
    tape: Tape,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        let mut inner = self.tape.inner.borrow_mut();
        inner.no_grad_depth = inner.no_grad_depth.saturating_sub(1);
    }
}

/// Gradients from one backward pass: one tensor, on the tape's device, per leaf reached.
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    by_node: HashMap<usize, DeviceTensor>,
    params: HashMap<ParamId, usize>,
}

impl Gradients {
    /// The gradient of a leaf variable (`None` when the loss does not depend on it).
    pub fn get(&self, var: &Var) -> Option<&DeviceTensor> {
        var.node.and_then(|n| self.by_node.get(&n))
    }

    /// The gradient of a parameter used on the tape (`None` when unused or not reached).
    pub fn param(&self, param: &Param) -> Option<&DeviceTensor> {
        self.params
            .get(&param.id())
            .and_then(|n| self.by_node.get(n))
    }

    /// Number of leaves holding a gradient.
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    /// True when no leaf received a gradient.
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }
}

impl Param {
    /// A parameter holding `value`.
    pub fn new(value: DeviceTensor) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Param {
            inner: Arc::new(ParamInner {
                id: ParamId(NEXT.fetch_add(1, Ordering::Relaxed)),
                value: RwLock::new(value),
            }),
        }
    }

    /// Its identity.
    pub fn id(&self) -> ParamId {
        self.inner.id
    }

    /// The current value (a cheap shared handle).
    pub fn value(&self) -> DeviceTensor {
        self.read().clone()
    }

    /// The current dimensions.
    pub fn dims(&self) -> Vec<usize> {
        self.read().dims().to_vec()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.read().numel()
    }

    /// Replaces the value with a tensor of the same shape.
    pub fn set(&self, value: DeviceTensor) -> Result<()> {
        let mut cur = self.write();
        if cur.shape() != value.shape() {
            return Err(AutogradError::ShapeMismatch {
                op: "Param::set",
                what: "shapes must be equal".into(),
                left_name: "parameter",
                left: cur.shape().to_string(),
                right_name: "new value",
                right: value.shape().to_string(),
            });
        }
        *cur = value;
        Ok(())
    }

    /// Runs `f` on the value in place (optimizer steps). The parameter is locked meanwhile:
    /// `f` must not read or write this same parameter.
    pub fn update<R>(&self, f: impl FnOnce(&mut DeviceTensor) -> R) -> R {
        f(&mut self.write())
    }

    /// Borrows the value for writing in place, for updates that step many parameters at once
    /// (an optimizer's multi-tensor step); hold the guard briefly, and do not take the same
    /// parameter twice.
    pub fn borrow_mut(&self) -> RwLockWriteGuard<'_, DeviceTensor> {
        self.write()
    }

    /// Borrows the value without cloning; hold the guard briefly (an optimizer step on this
    /// parameter waits for it).
    pub fn borrow(&self) -> RwLockReadGuard<'_, DeviceTensor> {
        self.read()
    }

    /// True when both handles share one tensor (the same parameter).
    pub fn ptr_eq(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    // A panic while the lock was held leaves a valid tensor behind (at worst a partly updated
    // one, as PyTorch would after an interrupted in-place op), so a poisoned lock is still used.
    fn read(&self) -> RwLockReadGuard<'_, DeviceTensor> {
        self.inner
            .value
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, DeviceTensor> {
        self.inner
            .value
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tape {
    /// An empty tape recording ops run on `device`.
    pub fn new(device: &Device) -> Tape {
        Tape {
            inner: Rc::new(RefCell::new(TapeInner {
                device: device.clone(),
                nodes: Vec::new(),
                no_grad_depth: 0,
                params: HashMap::new(),
                backward_done: false,
            })),
        }
    }

    /// The device its ops run on.
    pub fn device(&self) -> Device {
        self.inner.borrow().device.clone()
    }

    /// Number of recorded nodes (leaves and ops).
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True unless inside a [`Tape::no_grad`] scope.
    pub fn is_recording(&self) -> bool {
        self.inner.borrow().no_grad_depth == 0
    }

    /// Stops recording ops until the guard is dropped: values are computed, nothing is kept
    /// for backward (evaluation). Guards nest.
    pub fn no_grad(&self) -> NoGradGuard {
        self.inner.borrow_mut().no_grad_depth += 1;
        NoGradGuard { tape: self.clone() }
    }

    /// A value that needs no gradient (inputs, labels, frozen tensors).
    pub fn constant(&self, value: DeviceTensor) -> Var {
        Var {
            tape: self.clone(),
            node: None,
            value,
        }
    }

    /// A leaf that needs a gradient; [`Gradients::get`] returns it after backward.
    pub fn leaf(&self, value: DeviceTensor) -> Var {
        let mut inner = self.inner.borrow_mut();
        let id = inner.nodes.len();
        inner.nodes.push(Node {
            parents: Vec::new(),
            backward: None,
            unit_backward: None,
            leaf: true,
        });
        Var {
            tape: self.clone(),
            node: Some(id),
            value,
        }
    }

    /// The leaf for a parameter (the same leaf each time it is used on this tape);
    /// [`Gradients::param`] returns its gradient.
    pub fn param(&self, param: &Param) -> Var {
        let existing = self.inner.borrow().params.get(&param.id()).copied();
        if let Some(node) = existing {
            return Var {
                tape: self.clone(),
                node: Some(node),
                value: param.value(),
            };
        }
        let var = self.leaf(param.value());
        if let Some(node) = var.node {
            self.inner.borrow_mut().params.insert(param.id(), node);
        }
        var
    }

    fn same(&self, other: &Tape) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether an op over `inputs` must be recorded (recording, and some input needs a grad).
    pub(crate) fn tracks(&self, inputs: &[&Var]) -> bool {
        self.is_recording() && inputs.iter().any(|v| v.node.is_some())
    }

    /// Records an op's output; `backward` is only kept when [`Tape::tracks`] says so.
    pub(crate) fn record(
        &self,
        inputs: &[&Var],
        value: DeviceTensor,
        backward: Option<BackwardFn>,
    ) -> Var {
        self.record_with_unit(inputs, value, backward.map(|f| (f, None)))
    }

    /// [`Tape::record`] for an op that also knows its input gradients for a unit output
    /// gradient (a loss, when it is the root of [`Var::backward`]).
    pub(crate) fn record_with_unit(
        &self,
        inputs: &[&Var],
        value: DeviceTensor,
        backward: Option<(BackwardFn, Option<UnitBackwardFn>)>,
    ) -> Var {
        let node = match backward {
            Some((f, unit)) if self.tracks(inputs) => {
                let mut inner = self.inner.borrow_mut();
                let id = inner.nodes.len();
                inner.nodes.push(Node {
                    parents: inputs.iter().map(|v| v.node).collect(),
                    backward: Some(f),
                    unit_backward: unit,
                    leaf: false,
                });
                Some(id)
            }
            _ => None,
        };
        Var {
            tape: self.clone(),
            node,
            value,
        }
    }

    fn backward_from(&self, root: usize, seed: Seed) -> Result<Gradients> {
        let mut inner = self.inner.borrow_mut();
        if inner.backward_done {
            return Err(AutogradError::BackwardTwice);
        }
        inner.backward_done = true;
        let device = inner.device.clone();
        let mut grads: Vec<Option<DeviceTensor>> = vec![None; root + 1];
        let mut by_node = HashMap::new();
        // Nodes from `end - 1` down run their backward (the root too, unless the shortcut ran it).
        let mut end = root + 1;
        match seed {
            Seed::Given(seed) => grads[root] = Some(seed),
            Seed::Ones(shape) => match inner.nodes[root].unit_backward.take() {
                Some(unit) => {
                    let node = &mut inner.nodes[root];
                    node.backward = None;
                    let parents = node.parents.clone();
                    accumulate(&device, &mut grads, parents, unit())?;
                    end = root;
                }
                None => grads[root] = Some(device.full(shape.dims(), 1.0)?),
            },
        }
        for id in (0..end).rev() {
            let Some(g) = grads[id].take() else {
                continue;
            };
            let node = &mut inner.nodes[id];
            if node.leaf {
                by_node.insert(id, g);
                continue;
            }
            let Some(f) = node.backward.take() else {
                return Err(AutogradError::BackwardTwice);
            };
            let parents = node.parents.clone();
            let input_grads = f(&device, &g)?;
            accumulate(&device, &mut grads, parents, input_grads)?;
        }
        // Free everything else the ops saved.
        for node in &mut inner.nodes {
            node.backward = None;
            node.unit_backward = None;
        }
        Ok(Gradients {
            by_node,
            params: inner.params.clone(),
        })
    }
}

/// Adds an op's input gradients to its parents' gradients.
fn accumulate(
    device: &Device,
    grads: &mut [Option<DeviceTensor>],
    parents: Vec<Option<usize>>,
    input_grads: Vec<Option<DeviceTensor>>,
) -> Result<()> {
    for (parent, pg) in parents.into_iter().zip(input_grads) {
        let (Some(p), Some(pg)) = (parent, pg) else {
            continue;
        };
        // In place when the sum owns its buffer; op backwards may hand out shared buffers (the
        // same upstream gradient to both inputs of `add`), which `add_assign` copies first.
        grads[p] = Some(match grads[p].take() {
            Some(mut acc) => {
                device.add_assign(&mut acc, &pg)?;
                acc
            }
            None => pg,
        });
    }
    Ok(())
}

impl Var {
    /// The value.
    pub fn value(&self) -> &DeviceTensor {
        &self.value
    }

    /// The value's shape.
    pub fn shape(&self) -> &Shape {
        self.value.shape()
    }

    /// The value's dimensions.
    pub fn dims(&self) -> &[usize] {
        self.value.dims()
    }

    /// The tape it belongs to.
    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// The device of its tape.
    pub fn device(&self) -> Device {
        self.tape.device()
    }

    /// True when a gradient flows back through it (a leaf or a recorded op output).
    pub fn requires_grad(&self) -> bool {
        self.node.is_some()
    }

    /// The same value cut off from the tape (a constant).
    pub fn detach(&self) -> Var {
        self.tape.constant(self.value.clone())
    }

    /// Runs backward from this scalar (one-element) value, seeding it with 1.
    pub fn backward(&self) -> Result<Gradients> {
        if self.value.numel() != 1 {
            return Err(AutogradError::NotScalar {
                shape: self.value.shape().to_string(),
            });
        }
        self.backward_from_seed(Seed::Ones(self.value.shape().clone()))
    }

    /// Runs backward from this value seeded with `grad` (its shape must match the value's).
    pub fn backward_with(&self, grad: DeviceTensor) -> Result<Gradients> {
        if grad.shape() != self.value.shape() {
            return Err(AutogradError::ShapeMismatch {
                op: "backward_with",
                what: "the seed gradient must have the value's shape".into(),
                left_name: "value",
                left: self.value.shape().to_string(),
                right_name: "seed",
                right: grad.shape().to_string(),
            });
        }
        self.backward_from_seed(Seed::Given(grad))
    }

    fn backward_from_seed(&self, seed: Seed) -> Result<Gradients> {
        if self.tape.inner.borrow().backward_done {
            return Err(AutogradError::BackwardTwice);
        }
        let root = self.node.ok_or(AutogradError::NoGradPath)?;
        self.tape.backward_from(root, seed)
    }

    /// Checks that every operand of `op` lives on this var's tape.
    pub(crate) fn check_tapes(&self, op: &'static str, others: &[&Var]) -> Result<()> {
        if others.iter().all(|o| self.tape.same(&o.tape)) {
            Ok(())
        } else {
            Err(AutogradError::DifferentTapes { op })
        }
    }
}

/// Wraps a forward kernel error with the op's name and every operand's shape.
pub(crate) fn op_err(
    op: &'static str,
    operands: &[(&str, &Shape)],
) -> impl FnOnce(KernelError) -> AutogradError {
    let operands = operands
        .iter()
        .map(|(n, s)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    move |source| AutogradError::Op {
        op,
        operands,
        source: Box::new(source),
    }
}
