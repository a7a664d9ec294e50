//! Golden cases computed with PyTorch: the final word on what "correct" means.
//!
//! A golden directory holds `manifest.json` plus one `<case>.safetensors` per case (format in
//! `../shared/golden/README.md`). [`Golden::open`] reads any such directory; [`Golden::open_default`]
//! reads `$FOVEA_GOLDEN_DIR`, else `<workspace root>/../shared/golden`. An unknown op, a missing
//! tensor or a stored shape that disagrees with the manifest is an error, never a skip.
//!
//! ```no_run
//! use tensor::golden::{self, GoldenOp};
//!
//! for case in golden::load_cases(GoldenOp::Relu)? {
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
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable naming a golden directory that replaces the default one.
pub const GOLDEN_DIR_ENV: &str = "FOVEA_GOLDEN_DIR";

/// The manifest format version this reader understands.
pub const FORMAT: u64 = 1;

/// The operation a golden case exercises (the manifest's `op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GoldenOp {
    /// `conv2d`: forward and backward of a 2-D convolution.
    Conv2d,
    /// `avg_pool2d`: average pooling forward and backward.
    AvgPool2d,
    /// `max_pool2d`: max pooling forward and backward.
    MaxPool2d,
    /// `linear`: `y = x @ weight.T + bias` forward and backward.
    Linear,
    /// `sigmoid` activation forward and backward.
    Sigmoid,
    /// `relu` activation forward and backward.
    Relu,
    /// `tanh` activation forward and backward.
    Tanh,
    /// `cross_entropy`: mean softmax cross-entropy and its gradient.
    CrossEntropy,
    /// `optimizer`: several SGD or Adam steps on one parameter.
    Optimizer,
    /// `lenet_train_steps`: a few full LeNet training steps.
    LenetTrainSteps,
}

impl GoldenOp {
    /// Every op, in manifest-README order.
    pub const ALL: [GoldenOp; 10] = [
        GoldenOp::Conv2d,
        GoldenOp::AvgPool2d,
        GoldenOp::MaxPool2d,
        GoldenOp::Linear,
        GoldenOp::Sigmoid,
        GoldenOp::Relu,
        GoldenOp::Tanh,
        GoldenOp::CrossEntropy,
        GoldenOp::Optimizer,
        GoldenOp::LenetTrainSteps,
    ];

    /// The op's name as the manifest spells it (`conv2d`, `avg_pool2d`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            GoldenOp::Conv2d => "conv2d",
            GoldenOp::AvgPool2d => "avg_pool2d",
            GoldenOp::MaxPool2d => "max_pool2d",
            GoldenOp::Linear => "linear",
            GoldenOp::Sigmoid => "sigmoid",
            GoldenOp::Relu => "relu",
            GoldenOp::Tanh => "tanh",
            GoldenOp::CrossEntropy => "cross_entropy",
            GoldenOp::Optimizer => "optimizer",
            GoldenOp::LenetTrainSteps => "lenet_train_steps",
        }
    }

    /// The op with manifest name `name`, if it is one this crate knows.
    pub fn from_name(name: &str) -> Option<GoldenOp> {
        GoldenOp::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl fmt::Display for GoldenOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The op exercised.
    pub op: GoldenOp,
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
    cases: Vec<(GoldenOp, RawCase)>,
}

impl Golden {
    /// Opens the golden directory `dir` (any directory in the manifest format).
    ///
    /// Fails on an unreadable or malformed manifest, an unknown format version or op, a duplicate
    /// or path-like case name, or a case whose input/upstream/output names lack a shape.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest_path = dir.join("manifest.json");
        let file_err = |reason: String| TensorError::Golden {
            case: manifest_path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            file_err(format!(
                "cannot read the golden manifest ({e}); set {GOLDEN_DIR_ENV} to a golden directory"
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
            let op = GoldenOp::from_name(&case.op).ok_or_else(|| {
                let known: Vec<_> = GoldenOp::ALL.iter().map(|op| op.as_str()).collect();
                err(format!(
                    "unknown op `{}` (known: {})",
                    case.op,
                    known.join(", ")
                ))
            })?;
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
            cases.push((op, case));
        }
        Ok(Self {
            dir,
            made_with: raw.made_with,
            cases,
        })
    }

    /// Opens [`default_dir`]: `$FOVEA_GOLDEN_DIR`, else `<workspace root>/../shared/golden`.
    pub fn open_default() -> Result<Self> {
        Self::open(default_dir()?)
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
        self.cases.iter().map(|(_, c)| c.name.as_str()).collect()
    }

    /// The names of the cases of `op`, in manifest order (possibly none).
    pub fn case_names_for(&self, op: GoldenOp) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(_, c)| c.name.as_str())
            .collect()
    }

    /// Loads the case `name` with its tensors, checking each against the manifest.
    pub fn case(&self, name: &str) -> Result<GoldenCase> {
        let (op, raw) = self
            .cases
            .iter()
            .find(|(_, c)| c.name == name)
            .ok_or_else(|| TensorError::Golden {
                case: name.to_string(),
                reason: format!(
                    "no such case in {}",
                    self.dir.join("manifest.json").display()
                ),
            })?;
        self.load(*op, raw)
    }

    /// Loads every case of `op`; having none is an error, so a test cannot silently pass.
    pub fn load_cases(&self, op: GoldenOp) -> Result<Vec<GoldenCase>> {
        let cases: Vec<_> = self
            .cases
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(o, c)| self.load(*o, c))
            .collect::<Result<_>>()?;
        if cases.is_empty() {
            return Err(TensorError::Golden {
                case: self.dir.join("manifest.json").display().to_string(),
                reason: format!("no `{op}` cases"),
            });
        }
        Ok(cases)
    }

    /// Loads every case in the manifest.
    pub fn load_all(&self) -> Result<Vec<GoldenCase>> {
        self.cases.iter().map(|(o, c)| self.load(*o, c)).collect()
    }

    fn load(&self, op: GoldenOp, raw: &RawCase) -> Result<GoldenCase> {
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
            op,
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

/// The golden directory to use: `$FOVEA_GOLDEN_DIR` when set and non-empty, else
/// `<workspace root>/../shared/golden`.
pub fn default_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(GOLDEN_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    Ok(workspace_root()?.join("..").join("shared").join("golden"))
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

/// Opens the default golden directory and loads every case of `op` (none is an error).
pub fn load_cases(op: GoldenOp) -> Result<Vec<GoldenCase>> {
    Golden::open_default()?.load_cases(op)
}

/// Opens the default golden directory and loads every case.
pub fn load_all() -> Result<Vec<GoldenCase>> {
    Golden::open_default()?.load_all()
}
