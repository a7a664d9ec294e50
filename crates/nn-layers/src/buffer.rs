//! Non-trainable module state ([`Buffer`]) and its host form in a state dict ([`StateTensor`]).

use crate::error::{NnError, Result};
use conv_kernels::{Device, DeviceTensor};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tensor::Tensor;

/// What a [`Buffer`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// An f32 tensor on the device (batch norm's `running_mean`, `running_var`).
    F32,
    /// A rank-0 int64 scalar kept on the host (`num_batches_tracked`); saved as a PyTorch
    /// `torch.long` scalar (safetensors `I64`, shape `[]`).
    I64,
}

impl BufferKind {
    /// The safetensors dtype it is saved as (`F32`, `I64`).
    pub fn dtype(self) -> &'static str {
        match self {
            BufferKind::F32 => "F32",
            BufferKind::I64 => "I64",
        }
    }
}

#[derive(Clone, Debug)]
enum Value {
    F32(DeviceTensor),
    I64(i64),
}

/// Non-trainable state owned by a module: part of its `state_dict` and checkpoints, never seen
/// by optimizers (PyTorch `register_buffer`). Cloning is cheap and shares the value; it is
/// `Send + Sync` and updated through `&self`, so a forward pass can change it (running
/// statistics).
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<RwLock<Value>>,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.read() {
            Value::F32(t) => f.debug_struct("Buffer").field("f32", t.shape()).finish(),
            Value::I64(v) => f.debug_struct("Buffer").field("i64", v).finish(),
        }
    }
}

impl Buffer {
    /// An f32 buffer holding `value`.
    pub fn new(value: DeviceTensor) -> Self {
        Self::from_value(Value::F32(value))
    }

    /// An int64 scalar buffer (`num_batches_tracked`), starting at `value`.
    pub fn scalar_i64(value: i64) -> Self {
        Self::from_value(Value::I64(value))
    }

    fn from_value(v: Value) -> Self {
        Self {
            inner: Arc::new(RwLock::new(v)),
        }
    }

    /// What it holds.
    pub fn kind(&self) -> BufferKind {
        match &*self.read() {
            Value::F32(_) => BufferKind::F32,
            Value::I64(_) => BufferKind::I64,
        }
    }

    /// The dimensions (`[]` for an int64 scalar).
    pub fn dims(&self) -> Vec<usize> {
        match &*self.read() {
            Value::F32(t) => t.dims().to_vec(),
            Value::I64(_) => Vec::new(),
        }
    }

    /// Number of elements (1 for an int64 scalar).
    pub fn numel(&self) -> usize {
        match &*self.read() {
            Value::F32(t) => t.numel(),
            Value::I64(_) => 1,
        }
    }

    /// The f32 value (a cheap shared handle); an error for an int64 buffer.
    pub fn tensor(&self) -> Result<DeviceTensor> {
        match &*self.read() {
            Value::F32(t) => Ok(t.clone()),
            Value::I64(_) => Err(wrong_kind("tensor", BufferKind::I64)),
        }
    }

    /// Replaces the f32 value with a tensor of the same shape.
    pub fn set(&self, value: DeviceTensor) -> Result<()> {
        match &mut *self.write() {
            Value::F32(cur) if cur.shape() == value.shape() => {
                *cur = value;
                Ok(())
            }
            Value::F32(cur) => Err(crate::error::invalid(
                "Buffer::set",
                format!(
                    "the buffer has shape {}, the new value {}",
                    cur.shape(),
                    value.shape()
                ),
            )),
            Value::I64(_) => Err(wrong_kind("set", BufferKind::I64)),
        }
    }

    /// Runs `f` on the f32 value in place (a running-statistics kernel). The buffer is locked
    /// meanwhile: `f` must not access this same buffer.
    pub fn update<R>(&self, f: impl FnOnce(&mut DeviceTensor) -> R) -> Result<R> {
        match &mut *self.write() {
            Value::F32(t) => Ok(f(t)),
            Value::I64(_) => Err(wrong_kind("update", BufferKind::I64)),
        }
    }

    /// The int64 value; an error for an f32 buffer.
    pub fn get_i64(&self) -> Result<i64> {
        match &*self.read() {
            Value::I64(v) => Ok(*v),
            Value::F32(_) => Err(wrong_kind("get_i64", BufferKind::F32)),
        }
    }

    /// Sets the int64 value; an error for an f32 buffer.
    pub fn set_i64(&self, value: i64) -> Result<()> {
        match &mut *self.write() {
            Value::I64(v) => {
                *v = value;
                Ok(())
            }
            Value::F32(_) => Err(wrong_kind("set_i64", BufferKind::F32)),
        }
    }

    /// True when both handles share one value.
    pub fn ptr_eq(&self, other: &Buffer) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The value copied to the host.
    pub fn to_host(&self, device: &Device) -> Result<StateTensor> {
        let v = self.read().clone();
        Ok(match v {
            Value::F32(t) => StateTensor::F32(device.to_host(&t)?),
            Value::I64(v) => StateTensor::I64(v),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Value> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Value> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn wrong_kind(op: &'static str, found: BufferKind) -> NnError {
    let want = match found {
        BufferKind::F32 => BufferKind::I64,
        BufferKind::I64 => BufferKind::F32,
    };
    crate::error::invalid(
        "Buffer",
        format!(
            "{op} needs an {} buffer, this one holds {}",
            want.dtype(),
            found.dtype()
        ),
    )
}

/// One entry of a [`StateDict`]: a parameter or buffer copied to the host.
#[derive(Clone, Debug, PartialEq)]
pub enum StateTensor {
    /// An f32 tensor (every parameter, float buffers).
    F32(Tensor),
    /// A rank-0 int64 scalar (`num_batches_tracked`).
    I64(i64),
}

impl StateTensor {
    /// What kind of buffer it loads into (parameters are always [`BufferKind::F32`]).
    pub fn kind(&self) -> BufferKind {
        match self {
            StateTensor::F32(_) => BufferKind::F32,
            StateTensor::I64(_) => BufferKind::I64,
        }
    }

    /// The dimensions (`[]` for an int64 scalar).
    pub fn dims(&self) -> &[usize] {
        match self {
            StateTensor::F32(t) => t.dims(),
            StateTensor::I64(_) => &[],
        }
    }

    /// The f32 tensor, if it is one.
    pub fn as_f32(&self) -> Option<&Tensor> {
        match self {
            StateTensor::F32(t) => Some(t),
            StateTensor::I64(_) => None,
        }
    }

    /// The int64 value, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StateTensor::I64(v) => Some(*v),
            StateTensor::F32(_) => None,
        }
    }
}

impl From<Tensor> for StateTensor {
    fn from(t: Tensor) -> Self {
        StateTensor::F32(t)
    }
}

impl From<i64> for StateTensor {
    fn from(v: i64) -> Self {
        StateTensor::I64(v)
    }
}

/// A model's parameters and buffers on the host, by PyTorch name (PyTorch `state_dict()`).
pub type StateDict = BTreeMap<String, StateTensor>;
