//! Named tensors to and from safetensors files: f32 (optionally stored as f16) and i64 labels.
//!
//! Writing goes through [`NamedTensors`] and is atomic (temporary file in the same directory,
//! fsync, rename). Reading goes through [`TensorFile`], which checks the whole header up front so
//! that a truncated, corrupt or hostile file yields a typed error naming the file and tensor,
//! never a panic.
//!
//! ```
//! use tensor::{NamedTensors, Tensor, TensorFile};
//!
//! let mut set = NamedTensors::new();
//! set.insert("1.weight", &Tensor::ones(&[6, 1, 5, 5])?)?;
//! set.insert_labels("labels", &[3, 1, 4])?;
//! set.set_metadata("epoch", "1");
//! let file = TensorFile::from_bytes(set.to_bytes()?)?;
//! assert_eq!(file.tensor("1.weight")?.dims(), &[6, 1, 5, 5]);
//! assert_eq!(file.labels("labels")?, vec![3, 1, 4]);
//! assert_eq!(file.metadata()["epoch"], "1");
//! # Ok::<(), tensor::TensorError>(())
//! ```

use crate::error::{Result, TensorError};
use crate::shape::Shape;
use crate::tensor::Tensor;
use half::f16;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The path reported in errors for tensors parsed from an in-memory buffer.
pub const IN_MEMORY: &str = "<memory>";

/// How an f32 tensor is stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatStorage {
    /// Full precision (`F32`), the default.
    F32,
    /// Half precision (`F16`), rounded to nearest even; widened back exactly on read.
    F16,
}

#[derive(Clone, Debug)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// A set of named tensors (and string metadata) to be written as one safetensors file.
#[derive(Clone, Debug, Default)]
pub struct NamedTensors {
    entries: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

/// Rewrites a serialized file's JSON header with every object's keys in sorted order. The
/// safetensors crate writes the metadata from a `HashMap`, so their order, and with it the
/// file's bytes, changed from one write of the same tensors to the next. The same keys and
/// values in another order take the same bytes, so the header keeps its length and the data
/// its offsets; a header that would not (never seen) is left as the crate wrote it.
fn sort_header_keys(bytes: &mut [u8]) {
    let Some(len) = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(|b| u64::from_le_bytes(b) as usize)
    else {
        return;
    };
    let Some(header) = bytes.get(8..8usize.saturating_add(len)) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(header) else {
        return;
    };
    let json = text.trim_end_matches(' ');
    let Ok(mut top) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(json) else {
        return;
    };
    for value in top.values_mut() {
        if let serde_json::Value::Object(map) = value {
            let sorted: BTreeMap<String, serde_json::Value> =
                std::mem::take(map).into_iter().collect();
            if let Ok(v) = serde_json::to_value(sorted) {
                *value = v;
            }
        }
    }
    match serde_json::to_string(&top) {
        Ok(sorted) if sorted.len() == json.len() => {
            bytes[8..8 + sorted.len()].copy_from_slice(sorted.as_bytes());
        }
        _ => {}
    }
}

impl NamedTensors {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an f32 tensor stored as `F32`; fails if `name` is already present.
    pub fn insert(&mut self, name: impl Into<String>, tensor: &Tensor) -> Result<()> {
        self.insert_float(name, tensor, FloatStorage::F32)
    }

    /// Adds an f32 tensor stored as `F16` (rounded); fails if `name` is already present.
    pub fn insert_f16(&mut self, name: impl Into<String>, tensor: &Tensor) -> Result<()> {
        self.insert_float(name, tensor, FloatStorage::F16)
    }

    /// Adds an f32 tensor with the chosen on-disk precision; fails if `name` is already present.
    pub fn insert_float(
        &mut self,
        name: impl Into<String>,
        tensor: &Tensor,
        storage: FloatStorage,
    ) -> Result<()> {
        let (dtype, bytes) = match storage {
            FloatStorage::F32 => (
                Dtype::F32,
                tensor.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            FloatStorage::F16 => (
                Dtype::F16,
                tensor
                    .data()
                    .iter()
                    .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
        };
        self.push(name.into(), dtype, tensor.dims().to_vec(), bytes)
    }

    /// Adds an i64 tensor (class labels, counters); `data.len()` must match `dims`.
    pub fn insert_i64(
        &mut self,
        name: impl Into<String>,
        dims: &[usize],
        data: &[i64],
    ) -> Result<()> {
        let shape = Shape::new(dims)?;
        if shape.numel() != data.len() {
            return Err(TensorError::LengthMismatch {
                shape: shape.to_string(),
                expected: shape.numel(),
                found: data.len(),
            });
        }
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name.into(), Dtype::I64, dims.to_vec(), bytes)
    }

    /// Adds class labels as a rank-1 `I64` tensor (PyTorch's label dtype; values above
    /// `i64::MAX`, which no class count reaches, saturate).
    pub fn insert_labels(&mut self, name: impl Into<String>, labels: &[usize]) -> Result<()> {
        let data: Vec<i64> = labels
            .iter()
            .map(|&l| i64::try_from(l).unwrap_or(i64::MAX))
            .collect();
        self.insert_i64(name, &[labels.len()], &data)
    }

    /// Sets a string entry of the file's `__metadata__` (replacing an earlier value).
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no tensor has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The whole safetensors file as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let invalid = |reason: String| TensorError::InvalidFile {
            path: PathBuf::from(IN_MEMORY),
            reason,
        };
        let views = self
            .entries
            .iter()
            .map(|(name, e)| {
                TensorView::new(e.dtype, e.shape.clone(), &e.bytes)
                    .map(|v| (name.as_str(), v))
                    .map_err(|err| invalid(format!("tensor `{name}`: {err}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = (!self.metadata.is_empty()).then(|| {
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        });
        let mut bytes =
            safetensors::serialize(views, metadata).map_err(|err| invalid(err.to_string()))?;
        sort_header_keys(&mut bytes);
        Ok(bytes)
    }

    /// Writes the file atomically: a temporary file in the same directory, fsync, then rename,
    /// so `path` always holds either the old file or the complete new one.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_bytes()?;
        write_atomic(path.as_ref(), &bytes)
    }

    fn push(
        &mut self,
        name: String,
        dtype: Dtype,
        shape: Vec<usize>,
        bytes: Vec<u8>,
    ) -> Result<()> {
        if self.entries.contains_key(&name) {
            return Err(TensorError::DuplicateTensor { name });
        }
        self.entries.insert(
            name,
            Entry {
                dtype,
                shape,
                bytes,
            },
        );
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically (same-directory temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |source| TensorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path has no file name",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Persist the rename itself; not every platform lets a directory be opened or synced.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[derive(Clone, Debug)]
struct Stored {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte range in the file buffer.
    start: usize,
    end: usize,
}

/// A safetensors file read into memory and validated: names, shapes, f32/f16/i64 tensors, metadata.
#[derive(Clone, Debug)]
pub struct TensorFile {
    path: PathBuf,
    bytes: Vec<u8>,
    tensors: BTreeMap<String, Stored>,
    metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// Reads and validates the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|source| TensorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path.to_path_buf(), bytes)
    }

    /// Validates an in-memory safetensors buffer (errors name the path `<memory>`).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::parse(PathBuf::from(IN_MEMORY), bytes)
    }

    /// The file this was read from (`<memory>` for [`TensorFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// True when a tensor named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The stored dimensions of tensor `name`.
    pub fn dims(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.stored(name)?.shape)
    }

    /// The stored dtype of tensor `name`, as safetensors spells it (`F32`, `F16`, `I64`, ...).
    pub fn dtype(&self, name: &str) -> Result<String> {
        Ok(self.stored(name)?.dtype.to_string())
    }

    /// True when tensor `name` is stored as an integer type (`I64`, ...) rather than a float.
    pub fn is_i64(&self, name: &str) -> Result<bool> {
        Ok(self.stored(name)?.dtype == Dtype::I64)
    }

    /// Tensor `name` as f32; accepts `F32` and `F16` (widened exactly), else [`TensorError::WrongDtype`].
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let s = self.stored(name)?;
        let raw = &self.bytes[s.start..s.end];
        let data: Vec<f32> = match s.dtype {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => return Err(self.wrong_dtype(name, "F32 or F16", other)),
        };
        Tensor::from_vec(&s.shape, data)
    }

    /// Tensor `name` stored as `I64`: its shape and values.
    pub fn i64(&self, name: &str) -> Result<(Shape, Vec<i64>)> {
        let s = self.stored(name)?;
        if s.dtype != Dtype::I64 {
            return Err(self.wrong_dtype(name, "I64", s.dtype));
        }
        let data = self.bytes[s.start..s.end]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok((Shape::new(&s.shape)?, data))
    }

    /// Tensor `name` stored as `I64`, flattened into class indices; negative values are an error.
    pub fn labels(&self, name: &str) -> Result<Vec<usize>> {
        let (_, data) = self.i64(name)?;
        data.iter()
            .enumerate()
            .map(|(index, &value)| {
                usize::try_from(value).map_err(|_| TensorError::BadLabel {
                    path: self.path.clone(),
                    name: name.to_string(),
                    index,
                    value,
                })
            })
            .collect()
    }

    /// The file's `__metadata__` string map (empty when the file has none).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    fn stored(&self, name: &str) -> Result<&Stored> {
        self.tensors
            .get(name)
            .ok_or_else(|| TensorError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    fn wrong_dtype(&self, name: &str, expected: &str, found: Dtype) -> TensorError {
        TensorError::WrongDtype {
            path: self.path.clone(),
            name: name.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// Checks the header ourselves (bounds, per-tensor byte lengths) before handing the buffer
    /// to `safetensors`, so every failure names the file and tensor and nothing can overflow.
    fn parse(path: PathBuf, bytes: Vec<u8>) -> Result<Self> {
        let invalid = |reason: String| TensorError::InvalidFile {
            path: path.clone(),
            reason,
        };
        let truncated = |reason: String| TensorError::Truncated {
            path: path.clone(),
            reason,
        };
        let Some(len_bytes) = bytes.get(..8) else {
            return Err(truncated(format!(
                "{} bytes, shorter than the 8-byte header length",
                bytes.len()
            )));
        };
        let mut len_arr = [0u8; 8];
        len_arr.copy_from_slice(len_bytes);
        let header_len = u64::from_le_bytes(len_arr);
        let available = bytes.len() - 8;
        let header_end = usize::try_from(header_len)
            .ok()
            .filter(|&n| n <= available)
            .map(|n| n + 8)
            .ok_or_else(|| {
                truncated(format!(
                    "header length says {header_len} bytes, only {available} follow"
                ))
            })?;
        let header = std::str::from_utf8(&bytes[8..header_end])
            .map_err(|e| invalid(format!("header is not UTF-8: {e}")))?;
        let header: serde_json::Value = serde_json::from_str(header)
            .map_err(|e| invalid(format!("header is not JSON: {e}")))?;
        let serde_json::Value::Object(entries) = header else {
            return Err(invalid("header is not a JSON object".into()));
        };
        let data_len = bytes.len() - header_end;
        let mut tensors = BTreeMap::new();
        for (name, info) in &entries {
            if name == "__metadata__" {
                continue;
            }
            let info: safetensors::tensor::TensorInfo = serde_json::from_value(info.clone())
                .map_err(|e| invalid(format!("tensor `{name}`: bad header entry: {e}")))?;
            let (start, end) = info.data_offsets;
            if start > end {
                return Err(invalid(format!(
                    "tensor `{name}`: data_offsets [{start}, {end}] run backwards"
                )));
            }
            if end > data_len {
                return Err(truncated(format!(
                    "tensor `{name}` needs data bytes [{start}, {end}) but only {data_len} are present"
                )));
            }
            let shape_str = format!("{:?}", info.shape);
            let expected = info
                .shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .and_then(|n| n.checked_mul(info.dtype.bitsize()))
                .map(|bits| bits.div_ceil(8))
                .ok_or_else(|| invalid(format!("tensor `{name}`: shape {shape_str} overflows")))?;
            if end - start != expected {
                return Err(TensorError::DataLength {
                    path: path.clone(),
                    name: name.clone(),
                    dtype: info.dtype.to_string(),
                    shape: shape_str,
                    expected,
                    found: end - start,
                });
            }
            tensors.insert(
                name.clone(),
                Stored {
                    dtype: info.dtype,
                    shape: info.shape,
                    start: header_end + start,
                    end: header_end + end,
                },
            );
        }
        // Everything is in bounds now; let the crate check the rest (contiguity, metadata form).
        let metadata = SafeTensors::read_metadata(&bytes)
            .map_err(|e| invalid(e.to_string()))?
            .1
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Self {
            path,
            bytes,
            tensors,
            metadata,
        })
    }
}
