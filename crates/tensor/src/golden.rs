//! Golden cases computed with PyTorch: the final word on what "correct" means.
//!
//! A golden directory holds `manifest.json` plus one `<case>.safetensors` per case (format in
//! `../shared/golden/README.md`). [`Golden::open`] reads any such directory; [`default_dirs`]
//! lists the directories tests read: `$FOVEA_GOLDEN_DIR` (several, separated by `:`), else
//! `../shared/golden` and `../shared/golden-cnn` beside the workspace.
//!
//! Op names are plain strings (the manifest's `op`): this crate names no op, and a directory may
//! hold ops nobody replays yet. A directory without cases of some op is no error (that op's list
//! is empty); a missing tensor or a stored shape that disagrees with the manifest is an error,
//! never a skip. Whether a set covers the ops it should is a test of that set.
//!
//! ```no_run
//! use tensor::golden;
//!
//! // Every `relu` case of every golden directory.
//! for case in golden::load_cases("relu")? {
//!     let x = case.tensor("x")?;
//!     let y = x.map(|v| v.max(0.0));
//!     case.compare("y", &y)?;
//! }
//! # Ok::<(), tensor::TensorError>(())
//! ```

use crate::error::{Result, TensorError};
use crate::safetensors_io::TensorFile;
use crate::shape::Shape;
use crate::tensor::Tensor;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Environment variable listing the golden directories (separated by `:`) that replace the
/// default ones; relative entries are taken from the workspace root.
pub const GOLDEN_DIR_ENV: &str = "FOVEA_GOLDEN_DIR";

/// The default golden directories, relative to the workspace root.
pub const DEFAULT_DIRS: [&str; 2] = ["../shared/golden", "../shared/golden-cnn"];

/// The manifest format version this reader understands.
pub const FORMAT: u64 = 1;

/// Element-wise tolerance of a case: `|got - want| <= atol + rtol * |want|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f32,
    /// Absolute tolerance.
    pub atol: f32,
}

/// A value stored in a golden file: f32 data (stored F32 or F16) or i64 labels.
#[derive(Clone, Debug, PartialEq)]
pub enum GoldenTensor {
    /// A float tensor.
    F32(Tensor),
    /// An integer tensor (class labels), with its shape.
    I64(Shape, Vec<i64>),
}

impl GoldenTensor {
    /// The tensor's dimensions.
    pub fn dims(&self) -> &[usize] {
        match self {
            GoldenTensor::F32(t) => t.dims(),
            GoldenTensor::I64(s, _) => s.dims(),
        }
    }
}

/// One manifest entry, before its tensors are loaded.
#[derive(Clone, Debug, Deserialize)]
struct RawCase {
    name: String,
    op: String,
    #[serde(default)]
    params: Value,
    inputs: Vec<String>,
    #[serde(default)]
    upstream: Vec<String>,
    outputs: Vec<String>,
    shapes: BTreeMap<String, Vec<usize>>,
    tolerance: RawTolerance,
    #[serde(default)]
    note: String,
}

#[derive(Clone, Copy, Debug, Deserialize)]
struct RawTolerance {
    rtol: f64,
    atol: f64,
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    format: u64,
    #[serde(default)]
    made_with: String,
    cases: Vec<RawCase>,
}

/// A golden case with its tensors loaded and checked against the manifest.
#[derive(Clone, Debug)]
pub struct GoldenCase {
    /// Case name (also the stem of its `.safetensors` file).
    pub name: String,
    /// The op exercised, as the manifest names it (`conv2d`, `batch_norm2d`, ...).
    pub op: String,
    /// The golden directory the case was read from.
    pub dir: PathBuf,
    /// The op's settings, as written in the manifest (a JSON object).
    pub params: Value,
    /// Names of the tensors fed forward.
    pub inputs: Vec<String>,
    /// Names of the gradients flowing into the op's output (`grad_y`), for backward.
    pub upstream: Vec<String>,
    /// Names of the expected results.
    pub outputs: Vec<String>,
    /// Every tensor's shape, per the manifest.
    pub shapes: BTreeMap<String, Vec<usize>>,
    /// How close results must be.
    pub tolerance: Tolerance,
    /// Free-form remark from the manifest (may be empty).
    pub note: String,
    tensors: BTreeMap<String, GoldenTensor>,
}

impl GoldenCase {
    /// The f32 tensor `name`; an error when it is absent or holds labels.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        match self.get(name)? {
            GoldenTensor::F32(t) => Ok(t),
            GoldenTensor::I64(..) => Err(self.err(format!("tensor `{name}` is I64, expected F32"))),
        }
    }

    /// The i64 tensor `name` (labels) with its shape; an error when absent or float.
    pub fn i64(&self, name: &str) -> Result<(&Shape, &[i64])> {
        match self.get(name)? {
            GoldenTensor::I64(s, d) => Ok((s, d)),
            GoldenTensor::F32(_) => Err(self.err(format!("tensor `{name}` is F32, expected I64"))),
        }
    }

    /// The i64 tensor `name` as class indices; negative values are an error.
    pub fn labels(&self, name: &str) -> Result<Vec<usize>> {
        let (_, data) = self.i64(name)?;
        data.iter()
            .map(|&v| {
                usize::try_from(v)
                    .map_err(|_| self.err(format!("tensor `{name}` holds negative label {v}")))
            })
            .collect()
    }

    /// Any tensor `name`, float or integer.
    pub fn get(&self, name: &str) -> Result<&GoldenTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| self.err(format!("no tensor named `{name}` in this case")))
    }

    /// The names of all tensors of the case, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// Compares `got` with the expected tensor `name` under the case's tolerance.
    pub fn compare(&self, name: &str, got: &Tensor) -> Result<()> {
        let want = self.tensor(name)?;
        got.allclose(want, self.tolerance.rtol, self.tolerance.atol)
            .map_err(|m| {
                self.err(format!(
                    "`{name}` (rtol {}, atol {}): {m}",
                    self.tolerance.rtol, self.tolerance.atol
                ))
            })
    }

    /// The parameter `key`; an error naming the case when it is absent.
    pub fn param(&self, key: &str) -> Result<&Value> {
        self.params
            .get(key)
            .ok_or_else(|| self.err(format!("missing param `{key}`")))
    }

    /// True when the parameter `key` is present.
    pub fn has_param(&self, key: &str) -> bool {
        self.params.get(key).is_some()
    }

    /// The parameter `key` as a non-negative integer.
    pub fn param_usize(&self, key: &str) -> Result<usize> {
        let v = self.param(key)?;
        as_usize(v).ok_or_else(|| self.bad_param(key, "a non-negative integer", v))
    }

    /// The parameter `key` as a pair `[h, w]`; a single integer `n` means `[n, n]` as in PyTorch.
    pub fn param_usize2(&self, key: &str) -> Result<[usize; 2]> {
        let v = self.param(key)?;
        let pair = match v {
            Value::Array(a) if a.len() == 2 => as_usize(&a[0]).zip(as_usize(&a[1])),
            other => as_usize(other).map(|n| (n, n)),
        };
        pair.map(|(a, b)| [a, b])
            .ok_or_else(|| self.bad_param(key, "an integer or a pair of integers", v))
    }

    /// The parameter `key` as a number.
    pub fn param_f64(&self, key: &str) -> Result<f64> {
        let v = self.param(key)?;
        v.as_f64().ok_or_else(|| self.bad_param(key, "a number", v))
    }

    /// The parameter `key` as a pair of numbers (Adam's `betas`).
    pub fn param_f64_2(&self, key: &str) -> Result<[f64; 2]> {
        let v = self.param(key)?;
        match v.as_array().map(Vec::as_slice) {
            Some([a, b]) => a.as_f64().zip(b.as_f64()).map(|(a, b)| [a, b]),
            _ => None,
        }
        .ok_or_else(|| self.bad_param(key, "a pair of numbers", v))
    }

    /// The parameter `key` as a string.
    pub fn param_str(&self, key: &str) -> Result<&str> {
        let v = self.param(key)?;
        v.as_str().ok_or_else(|| self.bad_param(key, "a string", v))
    }

    /// The parameter `key` as a boolean.
    pub fn param_bool(&self, key: &str) -> Result<bool> {
        let v = self.param(key)?;
        v.as_bool()
            .ok_or_else(|| self.bad_param(key, "a boolean", v))
    }

    /// The parameter `key` as a list of strings (`param_names`).
    pub fn param_strs(&self, key: &str) -> Result<Vec<&str>> {
        let v = self.param(key)?;
        v.as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
            .ok_or_else(|| self.bad_param(key, "a list of strings", v))
    }

    fn err(&self, reason: String) -> TensorError {
        TensorError::Golden {
            case: self.name.clone(),
            reason,
        }
    }

    fn bad_param(&self, key: &str, expected: &str, found: &Value) -> TensorError {
        self.err(format!("param `{key}` should be {expected}, found {found}"))
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// A golden directory: its manifest parsed and checked; tensors are loaded per case on demand.
#[derive(Clone, Debug)]
pub struct Golden {
    dir: PathBuf,
    made_with: String,
    cases: Vec<RawCase>,
}

impl Golden {
    /// Opens the golden directory `dir` (any directory in the manifest format).
    ///
    /// Fails on an unreadable or malformed manifest, an unknown format version, an op name that
    /// is not lower-case `snake_case`, a duplicate or path-like case name, or a case whose
    /// input/upstream/output names lack a shape. Which ops appear is not checked here.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest_path = dir.join("manifest.json");
        let file_err = |reason: String| TensorError::Golden {
            case: manifest_path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            file_err(format!(
                "cannot read the golden manifest ({e}); set {GOLDEN_DIR_ENV} to golden directories separated by `:`"
            ))
        })?;
        let raw: RawManifest =
            serde_json::from_str(&text).map_err(|e| file_err(format!("bad manifest: {e}")))?;
        if raw.format != FORMAT {
            return Err(file_err(format!(
                "manifest format {} is not supported (expected {FORMAT})",
                raw.format
            )));
        }
        let mut seen = BTreeSet::new();
        let mut cases = Vec::with_capacity(raw.cases.len());
        for case in raw.cases {
            let err = |reason: String| TensorError::Golden {
                case: case.name.clone(),
                reason,
            };
            if case.name.is_empty() || case.name.contains(['/', '\\']) || case.name.starts_with('.')
            {
                return Err(err("case name must be a plain file stem".into()));
            }
            if !seen.insert(case.name.clone()) {
                return Err(err("case listed twice in the manifest".into()));
            }
            if !is_op_name(&case.op) {
                return Err(err(format!(
                    "op `{}` is not a lower-case snake_case name",
                    case.op
                )));
            }
            if !(case.params.is_object() || case.params.is_null()) {
                return Err(err(format!(
                    "params should be an object, found {}",
                    case.params
                )));
            }
            for name in case
                .inputs
                .iter()
                .chain(&case.upstream)
                .chain(&case.outputs)
            {
                if !case.shapes.contains_key(name) {
                    return Err(err(format!("tensor `{name}` has no entry in `shapes`")));
                }
            }
            cases.push(case);
        }
        Ok(Self {
            dir,
            made_with: raw.made_with,
            cases,
        })
    }

    /// Opens every directory of [`default_dirs`], in order.
    pub fn open_default() -> Result<Vec<Self>> {
        default_dirs()?.iter().map(Self::open).collect()
    }

    /// The directory this was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest's `made_with` line (how the cases were computed).
    pub fn made_with(&self) -> &str {
        &self.made_with
    }

    /// All case names, in manifest order.
    pub fn case_names(&self) -> Vec<&str> {
        self.cases.iter().map(|c| c.name.as_str()).collect()
    }

    /// The distinct op names of the manifest, sorted.
    pub fn ops(&self) -> BTreeSet<&str> {
        self.cases.iter().map(|c| c.op.as_str()).collect()
    }

    /// The names of the cases of `op`, in manifest order (possibly none).
    pub fn case_names_for(&self, op: &str) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| c.op == op)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Loads the case `name` with its tensors, checking each against the manifest.
    pub fn case(&self, name: &str) -> Result<GoldenCase> {
        let raw =
            self.cases
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| TensorError::Golden {
                    case: name.to_string(),
                    reason: format!(
                        "no such case in {}",
                        self.dir.join("manifest.json").display()
                    ),
                })?;
        self.load(raw)
    }

    /// Loads every case of `op`, in manifest order; a directory without any is no error (the
    /// list is empty: another directory may hold them).
    pub fn load_cases(&self, op: &str) -> Result<Vec<GoldenCase>> {
        self.cases
            .iter()
            .filter(|c| c.op == op)
            .map(|c| self.load(c))
            .collect()
    }

    /// Loads every case in the manifest.
    pub fn load_all(&self) -> Result<Vec<GoldenCase>> {
        self.cases.iter().map(|c| self.load(c)).collect()
    }

    fn load(&self, raw: &RawCase) -> Result<GoldenCase> {
        let err = |reason: String| TensorError::Golden {
            case: raw.name.clone(),
            reason,
        };
        let file = TensorFile::open(self.dir.join(format!("{}.safetensors", raw.name)))
            .map_err(|e| err(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, want) in &raw.shapes {
            if !file.contains(name) {
                return Err(err(format!(
                    "tensor `{name}` is in the manifest but not in {}",
                    file.path().display()
                )));
            }
            let tensor = if file.is_i64(name)? {
                let (shape, data) = file.i64(name)?;
                GoldenTensor::I64(shape, data)
            } else {
                GoldenTensor::F32(file.tensor(name).map_err(|e| err(e.to_string()))?)
            };
            if tensor.dims() != want.as_slice() {
                return Err(err(format!(
                    "tensor `{name}` has shape {:?} in {} but {want:?} in the manifest",
                    tensor.dims(),
                    file.path().display()
                )));
            }
            tensors.insert(name.clone(), tensor);
        }
        if let Some(extra) = file
            .names()
            .into_iter()
            .find(|n| !raw.shapes.contains_key(*n))
        {
            return Err(err(format!(
                "tensor `{extra}` is in {} but not in the manifest's shapes",
                file.path().display()
            )));
        }
        Ok(GoldenCase {
            name: raw.name.clone(),
            op: raw.op.clone(),
            dir: self.dir.clone(),
            params: if raw.params.is_null() {
                Value::Object(Default::default())
            } else {
                raw.params.clone()
            },
            inputs: raw.inputs.clone(),
            upstream: raw.upstream.clone(),
            outputs: raw.outputs.clone(),
            shapes: raw.shapes.clone(),
            tolerance: Tolerance {
                rtol: raw.tolerance.rtol as f32,
                atol: raw.tolerance.atol as f32,
            },
            note: raw.note.clone(),
            tensors,
        })
    }
}

/// The golden directories to use, in order: [`dirs_from`] the value of `$FOVEA_GOLDEN_DIR`.
pub fn default_dirs() -> Result<Vec<PathBuf>> {
    dirs_from(std::env::var_os(GOLDEN_DIR_ENV).as_deref())
}

/// The golden directories a `FOVEA_GOLDEN_DIR` value names: its `:`-separated entries (empty
/// ones skipped), or [`DEFAULT_DIRS`] when there is no value or no entry. Relative entries are
/// resolved against the workspace root (tests run in their crate's directory).
pub fn dirs_from(value: Option<&OsStr>) -> Result<Vec<PathBuf>> {
    let listed: Vec<PathBuf> = value
        .map(|v| {
            std::env::split_paths(v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    let dirs = if listed.is_empty() {
        DEFAULT_DIRS.iter().map(PathBuf::from).collect()
    } else {
        listed
    };
    if dirs.iter().all(|d| d.is_absolute()) {
        return Ok(dirs);
    }
    let root = workspace_root()?;
    Ok(dirs.into_iter().map(|d| root.join(d)).collect())
}

/// True for a lower-case `snake_case` op name (`conv2d`, `batch_norm2d`).
fn is_op_name(op: &str) -> bool {
    op.starts_with(|c: char| c.is_ascii_lowercase())
        && op
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The workspace root: the nearest directory at or above this crate (or the running crate's
/// `CARGO_MANIFEST_DIR`) whose `Cargo.toml` has a `[workspace]` table.
pub fn workspace_root() -> Result<PathBuf> {
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(PathBuf::from(dir));
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for start in &starts {
        for dir in start.ancestors() {
            let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return Ok(dir.to_path_buf());
            }
        }
    }
    Err(TensorError::Golden {
        case: "<workspace>".into(),
        reason: format!(
            "no Cargo.toml with [workspace] above {}; set {GOLDEN_DIR_ENV}",
            starts
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    })
}

/// Loads every case of `op` from every directory of [`default_dirs`], in directory then
/// manifest order (possibly none: checking that a test replays something is the test's job).
pub fn load_cases(op: &str) -> Result<Vec<GoldenCase>> {
    let mut cases = Vec::new();
    for g in Golden::open_default()? {
        cases.extend(g.load_cases(op)?);
    }
    Ok(cases)
}

/// Loads every case of every directory of [`default_dirs`].
pub fn load_all() -> Result<Vec<GoldenCase>> {
    let mut cases = Vec::new();
    for g in Golden::open_default()? {
        cases.extend(g.load_all()?);
    }
    Ok(cases)
}
