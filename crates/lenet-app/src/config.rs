//! A run's settings, [`RunConfig`]: resolved once from the command line and the model's recipe,
//! saved as `config.json` and read back by `--resume`. Choices are typed enums that serialise
//! under their command-line names (`seed`, `sgd`, `cosine`, `fashion-mnist`). Settings added
//! after the first format (momentum, weight decay, Nesterov, augmentation, normalisation) have
//! serde defaults that mean what older runs did (none of them), and are left out of the file
//! when at that default, so LeNet's configs read exactly as before.

use crate::cli::{TrainArgs, UsageError};
use crate::data::DatasetKind;
use crate::file_out::write_atomic;
use crate::models::ModelKind;
use anyhow::{Context, anyhow};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Which optimizer.
#[derive(ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Stochastic gradient descent.
    Sgd,
    /// Adam.
    Adam,
}

impl OptimizerKind {
    /// The learning rate used when neither `--lr` nor the model's recipe gives one for this
    /// optimizer: d2l's LeNet rate for SGD, Kingma and Ba's for Adam.
    pub fn default_lr(self) -> f32 {
        match self {
            OptimizerKind::Sgd => 0.9,
            OptimizerKind::Adam => 1e-3,
        }
    }
}

/// How the learning rate changes over training.
#[derive(ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// The same rate throughout (also what configs written before schedules existed mean).
    #[default]
    Constant,
    /// Cosine decay from the rate to zero over all steps.
    Cosine,
}

impl ScheduleKind {
    /// The learning rate at optimizer step `step` (from 0) of `total`, starting from `base`.
    pub fn lr_at(self, base: f32, step: u64, total: u64) -> f32 {
        match self {
            ScheduleKind::Constant => base,
            ScheduleKind::Cosine => {
                let t = step as f64 / total.max(1) as f64;
                (base as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
            }
        }
    }
}

/// Training-time augmentation: the value of `--augment` and of `augment` in `config.json`,
/// written `none`, `crop:P`, `flip` or `crop:P,flip` (random crop of the image padded by `P`
/// zeros on each side, back to its size; random horizontal flip).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AugmentSpec {
    /// Crop padding in pixels (0: no crop).
    pub crop: usize,
    /// Random horizontal flip.
    pub flip: bool,
}

impl AugmentSpec {
    /// No augmentation.
    pub const NONE: AugmentSpec = AugmentSpec {
        crop: 0,
        flip: false,
    };

    /// True when nothing is augmented.
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// The data loader's settings.
    pub fn loader(&self) -> datasets::Augment {
        datasets::Augment {
            crop_padding: self.crop,
            flip: self.flip,
        }
    }
}

impl FromStr for AugmentSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = AugmentSpec::NONE;
        if s.trim() == "none" {
            return Ok(spec);
        }
        for part in s.split(',').map(str::trim) {
            if part == "flip" {
                spec.flip = true;
            } else if let Some(p) = part.strip_prefix("crop:") {
                spec.crop = p.parse::<usize>().ok().filter(|&p| p > 0).ok_or_else(|| {
                    format!("`{part}`: the crop padding must be a whole number above 0")
                })?;
            } else {
                return Err(format!(
                    "unknown augmentation `{part}` (expected `none`, or `crop:P` and/or `flip`, comma-separated)"
                ));
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for AugmentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.crop, self.flip) {
            (0, false) => write!(f, "none"),
            (0, true) => write!(f, "flip"),
            (p, false) => write!(f, "crop:{p}"),
            (p, true) => write!(f, "crop:{p},flip"),
        }
    }
}

impl TryFrom<String> for AugmentSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<AugmentSpec> for String {
    fn from(a: AugmentSpec) -> String {
        a.to_string()
    }
}

/// Input normalisation `x' = (x - mean) / std` after scaling pixels to `0..=1`: part of a
/// model's data pipeline, saved in `config.json` and in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormalizeSpec {
    /// Subtracted from every pixel.
    pub mean: f32,
    /// Divides every pixel after the subtraction.
    pub std: f32,
}

/// Fashion-MNIST's training-set statistics (pixels scaled to `0..=1`).
pub const FASHION_MNIST_STATS: NormalizeSpec = NormalizeSpec {
    mean: 0.2860,
    std: 0.3530,
};

impl NormalizeSpec {
    /// The data loader's settings.
    pub fn loader(&self) -> datasets::Normalize {
        datasets::Normalize {
            mean: self.mean,
            std: self.std,
        }
    }

    /// Normalises one value already scaled to `0..=1`.
    pub fn apply(&self, x: f32) -> f32 {
        self.loader().apply(x)
    }

    /// `MEAN,STD` (as `--normalize` takes it and checkpoints store it), or `none`.
    pub fn describe(n: Option<NormalizeSpec>) -> String {
        match n {
            Some(n) => format!("{},{}", n.mean, n.std),
            None => "none".into(),
        }
    }

    /// Parses [`NormalizeSpec::describe`]'s form: `none`, or `MEAN,STD` with a finite mean and a
    /// finite std above 0.
    pub fn parse(s: &str) -> Result<Option<NormalizeSpec>, String> {
        if s.trim() == "none" {
            return Ok(None);
        }
        let bad = || format!("`{s}`: expected `none` or MEAN,STD (e.g. 0.2860,0.3530)");
        let (m, d) = s.split_once(',').ok_or_else(bad)?;
        let mean: f32 = m.trim().parse().map_err(|_| bad())?;
        let std: f32 = d.trim().parse().map_err(|_| bad())?;
        let n = NormalizeSpec { mean, std };
        n.loader().check().map_err(|_| {
            format!("`{s}`: the mean must be finite and the std finite and above 0")
        })?;
        Ok(Some(n))
    }
}

/// The accepted ranges of the numeric settings: one definition for the flags (`cli`) and for
/// a `config.json` read back by `--resume`.
pub mod ranges {
    /// Epochs: 1 to this.
    pub const MAX_EPOCHS: u32 = 10_000;
    /// Batch size: 1 to this.
    pub const MAX_BATCH_SIZE: u32 = 65_536;

    /// A finite learning rate above 0.
    pub fn lr(v: f32) -> Result<f32, String> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(format!(
                "the learning rate must be a finite number above 0, got {v}"
            ))
        }
    }

    /// A momentum in `[0, 1)`.
    pub fn momentum(v: f32) -> Result<f32, String> {
        if (0.0..1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!(
                "the momentum must be at least 0 and below 1, got {v}"
            ))
        }
    }

    /// A finite weight decay of at least 0.
    pub fn weight_decay(v: f32) -> Result<f32, String> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(format!(
                "the weight decay must be a finite number of at least 0, got {v}"
            ))
        }
    }

    /// A count in `1..=max`.
    pub fn count(what: &str, v: u32, max: u32) -> Result<u32, String> {
        if (1..=max).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{what} must be from 1 to {max}, got {v}"))
        }
    }
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// The settings of a run, saved as `config.json` and reused by `--resume`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    /// The network.
    pub model: ModelKind,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Total epochs.
    pub epochs: u32,
    /// Learning rate (at the start, for a schedule).
    pub lr: f32,
    /// Batch size.
    pub batch_size: u32,
    /// Seed for initialisation and shuffling.
    pub seed: u64,
    /// The dataset.
    pub dataset: DatasetKind,
    /// Training images used (`None`: all).
    pub limit: Option<u32>,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// SGD momentum (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub momentum: f32,
    /// L2 weight decay (batch norm's weights and biases are never decayed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_decay: f32,
    /// Nesterov momentum (SGD).
    #[serde(default, skip_serializing_if = "is_false")]
    pub nesterov: bool,
    /// Training-time augmentation (never applied to evaluation).
    #[serde(default, skip_serializing_if = "AugmentSpec::is_none")]
    pub augment: AugmentSpec,
    /// Input normalisation, applied by train, eval, predict and inspect alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<NormalizeSpec>,
}

impl RunConfig {
    /// The settings `lenet train` runs with: each flag given, else the model's recipe (the
    /// recipe's optimizer settings only when its optimizer is the one used). Optimizer flags
    /// that do not apply to the optimizer are usage errors naming the flag.
    pub fn from_args(a: &TrainArgs) -> Result<Self, UsageError> {
        let recipe = a.model.spec().recipe;
        let optimizer = a.optimizer.unwrap_or(recipe.optimizer);
        let own = optimizer == recipe.optimizer;
        let pick = |flag: Option<f32>, value: f32| flag.unwrap_or(if own { value } else { 0.0 });
        let cfg = RunConfig {
            model: a.model,
            optimizer,
            epochs: a.epochs.unwrap_or(recipe.epochs),
            lr: a.lr.unwrap_or_else(|| recipe.lr_for(optimizer)),
            batch_size: a.batch_size.unwrap_or(recipe.batch_size),
            seed: a.seed,
            dataset: a.data.dataset,
            limit: a.limit,
            schedule: a.schedule.unwrap_or(recipe.schedule),
            momentum: pick(a.momentum, recipe.momentum),
            weight_decay: pick(a.weight_decay, recipe.weight_decay),
            nesterov: a.nesterov.unwrap_or(own && recipe.nesterov),
            augment: a.augment.unwrap_or(recipe.augment),
            normalize: match &a.normalize {
                Some(flag) => flag.0,
                None => recipe.normalize,
            },
        };
        if optimizer != OptimizerKind::Sgd {
            for (flag, given) in [
                ("--momentum", a.momentum.is_some_and(|m| m != 0.0)),
                ("--nesterov", a.nesterov == Some(true)),
            ] {
                if given {
                    return Err(UsageError::new(
                        flag,
                        format!(
                            "applies to sgd, but the optimizer is {}",
                            choice_name(optimizer)
                        ),
                    ));
                }
            }
        }
        if cfg.nesterov && cfg.momentum == 0.0 {
            return Err(UsageError::new(
                "--nesterov",
                "needs a momentum above 0 (--momentum)",
            ));
        }
        Ok(cfg)
    }

    /// The data loader's normalisation.
    pub fn loader_normalize(&self) -> Option<datasets::Normalize> {
        self.normalize.map(|n| n.loader())
    }

    /// Refuses `--resume` with a flag that disagrees with this (saved) config, naming the flag:
    /// a resumed run continues exactly as it was started. Flags with a default (`--model`,
    /// `--seed`, `--dataset`) are compared only when they differ from it, as only then were they
    /// surely given.
    pub fn check_resume_flags(&self, a: &TrainArgs) -> Result<(), UsageError> {
        fn differs<T: PartialEq + std::fmt::Debug>(
            flag: &'static str,
            given: Option<T>,
            saved: &T,
        ) -> Result<(), UsageError> {
            match given {
                Some(g) if &g != saved => Err(UsageError::new(
                    flag,
                    format!(
                        "{g:?} disagrees with the resumed run's config.json ({saved:?}); \
                         drop the flag to continue the run as it was started"
                    ),
                )),
                _ => Ok(()),
            }
        }
        // The defaults of the three flags that have one (see `TrainArgs` and `DataArgs`).
        let model = (a.model != ModelKind::Seed).then_some(a.model);
        differs("--model", model, &self.model)?;
        differs("--seed", (a.seed != 0).then_some(a.seed), &self.seed)?;
        let dataset = (a.data.dataset != DatasetKind::FashionMnist).then_some(a.data.dataset);
        differs("--dataset", dataset, &self.dataset)?;
        differs("--optimizer", a.optimizer, &self.optimizer)?;
        differs("--epochs", a.epochs, &self.epochs)?;
        differs("--lr", a.lr, &self.lr)?;
        differs("--batch-size", a.batch_size, &self.batch_size)?;
        differs("--limit", a.limit.map(Some), &self.limit)?;
        differs("--schedule", a.schedule, &self.schedule)?;
        differs("--momentum", a.momentum, &self.momentum)?;
        differs("--weight-decay", a.weight_decay, &self.weight_decay)?;
        differs("--nesterov", a.nesterov, &self.nesterov)?;
        differs("--augment", a.augment, &self.augment)?;
        differs(
            "--normalize",
            a.normalize.as_ref().map(|n| n.0),
            &self.normalize,
        )
    }

    /// The learning rate for optimizer step `step` (from 0) of `total`.
    pub fn lr_at(&self, step: u64, total: u64) -> f32 {
        self.schedule.lr_at(self.lr, step, total)
    }

    /// Writes the config to `path` (a run's `config.json`), atomically.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        write_atomic(path, json.as_bytes())
    }

    /// Reads a run's `config.json` at `path`, as a run to resume.
    pub fn read(path: &Path) -> anyhow::Result<RunConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
        Self::from_json(&text)
            .with_context(|| format!("{} is not a valid run config", path.display()))
    }

    /// Parses a config; a bad value's error names its field and the accepted values, and
    /// values out of the flags' ranges (see [`RunConfig::check`]) are refused the same way.
    pub fn from_json(text: &str) -> anyhow::Result<RunConfig> {
        let cfg: RunConfig = serde_json::from_str(text).map_err(|e| {
            let missing = e.to_string().starts_with("missing field");
            match key_at(text, e.line(), e.column()) {
                Some(key) if e.is_data() && !missing => anyhow!("field `{key}`: {e}"),
                _ => anyhow!(e),
            }
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks every value against the range its flag accepts, naming the field: a hand-edited
    /// or damaged `config.json` is refused before any work.
    pub fn check(&self) -> anyhow::Result<()> {
        let field =
            |name: &str, r: Result<(), String>| r.map_err(|e| anyhow!("field `{name}`: {e}"));
        field(
            "epochs",
            ranges::count("the epochs", self.epochs, ranges::MAX_EPOCHS).map(drop),
        )?;
        field(
            "batch_size",
            ranges::count("the batch size", self.batch_size, ranges::MAX_BATCH_SIZE).map(drop),
        )?;
        if let Some(limit) = self.limit {
            field(
                "limit",
                ranges::count("the limit", limit, u32::MAX).map(drop),
            )?;
        }
        field("lr", ranges::lr(self.lr).map(drop))?;
        field("momentum", ranges::momentum(self.momentum).map(drop))?;
        field(
            "weight_decay",
            ranges::weight_decay(self.weight_decay).map(drop),
        )?;
        if let Some(n) = self.normalize {
            field(
                "normalize",
                n.loader().check().map_err(|_| {
                    format!("the mean must be finite and the std finite and above 0, got {n:?}")
                }),
            )?;
        }
        if self.nesterov && self.momentum == 0.0 {
            field("nesterov", Err("needs a momentum above 0".into()))?;
        }
        Ok(())
    }
}

/// The key of the object member that position `line`:`column` (1-based, as serde_json reports
/// errors) lies in: the last `"key":` before it.
fn key_at(json: &str, line: usize, column: usize) -> Option<&str> {
    let line_start: usize = json
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let mut head = json.get(..(line_start + column).min(json.len()))?;
    // A colon inside a string value is not followed back by a closing quote; skip it.
    while let Some(colon) = head.rfind(':') {
        head = &head[..colon];
        if let Some(key) = head.trim_end().strip_suffix('"') {
            return key.rfind('"').map(|open| &key[open + 1..]);
        }
    }
    None
}

/// The command-line name of a choice (`fashion-mnist`, `sgd`, ...).
pub fn choice_name<T: ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// The accepted names of a choice, comma-separated.
pub fn choice_names<T: ValueEnum>() -> String {
    T::value_variants()
        .iter()
        .map(|v| choice_name(v.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a choice by its command-line name; the error names `what` and the accepted names.
pub fn parse_choice<T: ValueEnum>(what: &str, name: &str) -> anyhow::Result<T> {
    T::from_str(name, false).map_err(|_| {
        anyhow!(
            "unknown {what} `{name}` (expected one of: {})",
            choice_names::<T>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn resolved(args: &[&str]) -> RunConfig {
        let cli = Cli::try_parse_from(std::iter::once("lenet").chain(args.iter().copied()));
        let Command::Train(t) = cli.unwrap().command else {
            panic!("not train")
        };
        RunConfig::from_args(&t).unwrap()
    }

    fn usage_error(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("lenet").chain(args.iter().copied()));
        let Command::Train(t) = cli.unwrap().command else {
            panic!("not train")
        };
        RunConfig::from_args(&t).unwrap_err().to_string()
    }

    #[test]
    fn a_config_with_a_value_out_of_range_is_refused_naming_the_field() {
        for (field, bad) in [
            ("epochs", "0"),
            ("epochs", "4000000000"),
            ("lr", "-0.5"),
            ("lr", "0"),
            ("batch_size", "0"),
            ("limit", "0"),
            ("momentum", "1.0"),
            ("weight_decay", "-1"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(TODAYS_FORMAT).unwrap();
            v[field] = serde_json::from_str(bad).unwrap();
            let err = RunConfig::from_json(&v.to_string())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("field `{field}`")),
                "{field}={bad}: {err}"
            );
        }
        let mut v: serde_json::Value = serde_json::from_str(TODAYS_FORMAT).unwrap();
        v["normalize"] = serde_json::json!({"mean": 0.5, "std": 0.0});
        let err = RunConfig::from_json(&v.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `normalize`"), "{err}");
        assert!(RunConfig::from_json(TODAYS_FORMAT).is_ok());
    }

    /// A config exactly as the version before typed enums wrote it.
    const TODAYS_FORMAT: &str = r#"{
  "model": "modern",
  "optimizer": "adam",
  "epochs": 10,
  "lr": 0.001,
  "batch_size": 256,
  "seed": 0,
  "dataset": "fashion-mnist",
  "limit": null,
  "schedule": "cosine"
}"#;

    #[test]
    fn defaults_are_the_recipes() {
        assert_eq!(
            resolved(&["train"]),
            RunConfig {
                model: ModelKind::Seed,
                optimizer: OptimizerKind::Sgd,
                epochs: 10,
                lr: 0.9,
                batch_size: 256,
                seed: 0,
                dataset: DatasetKind::FashionMnist,
                limit: None,
                schedule: ScheduleKind::Constant,
                momentum: 0.0,
                weight_decay: 0.0,
                nesterov: false,
                augment: AugmentSpec::NONE,
                normalize: None,
            }
        );
        // Modern's recipe is the old config's but for the rate (4e-3 reaches 0.90).
        assert_eq!(
            resolved(&["train", "--model", "modern"]),
            RunConfig::from_json(&TODAYS_FORMAT.replace("0.001", "0.004")).unwrap()
        );
        // The rate follows the optimizer, the schedule follows the model, as before.
        let c = resolved(&["train", "--model", "modern", "--optimizer", "sgd"]);
        assert_eq!((c.lr, c.schedule), (0.9, ScheduleKind::Cosine));
        let c = resolved(&["train", "--optimizer", "adam", "--epochs", "3"]);
        assert_eq!(
            (c.lr, c.epochs, c.schedule),
            (1e-3, 3, ScheduleKind::Constant)
        );
        let c = resolved(&[
            "train",
            "--lr",
            "0.1",
            "--batch-size",
            "64",
            "--schedule",
            "cosine",
        ]);
        assert_eq!(
            (c.lr, c.batch_size, c.schedule),
            (0.1, 64, ScheduleKind::Cosine)
        );
    }

    #[test]
    fn configs_in_the_old_format_load_and_round_trip() {
        let c = RunConfig::from_json(TODAYS_FORMAT).unwrap();
        assert_eq!(
            (c.model, c.optimizer, c.dataset, c.schedule),
            (
                ModelKind::Modern,
                OptimizerKind::Adam,
                DatasetKind::FashionMnist,
                ScheduleKind::Cosine
            )
        );
        assert_eq!(serde_json::to_string_pretty(&c).unwrap(), TODAYS_FORMAT);
        // Configs from before the schedule existed ran at a constant rate.
        let old = r#"{"model": "seed", "optimizer": "sgd", "epochs": 2, "lr": 0.9,
            "batch_size": 24, "seed": 5, "dataset": "idx", "limit": 100}"#;
        let c = RunConfig::from_json(old).unwrap();
        assert_eq!(
            (c.schedule, c.dataset, c.limit),
            (ScheduleKind::Constant, DatasetKind::Idx, Some(100))
        );
    }

    #[test]
    fn bad_values_name_the_field_and_the_accepted_values() {
        for (from, to, field, accepted) in [
            (
                "\"modern\"",
                "\"resnet\"",
                "model",
                "`seed`, `modern`, `nin-small`, `resnet-small`",
            ),
            ("\"adam\"", "\"rmsprop\"", "optimizer", "`sgd` or `adam`"),
            (
                "\"cosine\"",
                "\"step\"",
                "schedule",
                "`constant` or `cosine`",
            ),
            (
                "\"fashion-mnist\"",
                "\"cifar\"",
                "dataset",
                "`fashion-mnist`, `mnist`",
            ),
            ("\"lr\": 0.001", "\"lr\": \"high\"", "lr", "f32"),
        ] {
            let bad = TODAYS_FORMAT.replace(from, to);
            let err = format!("{:#}", RunConfig::from_json(&bad).unwrap_err());
            assert!(err.contains(&format!("field `{field}`")), "{err}");
            assert!(err.contains(accepted), "{err}");
            // The same on one line.
            let compact = bad.replace('\n', " ");
            let err = format!("{:#}", RunConfig::from_json(&compact).unwrap_err());
            assert!(err.contains(&format!("field `{field}`")), "{err}");
        }
        let err = RunConfig::from_json(&TODAYS_FORMAT.replace("\"lr\": 0.001,", ""))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("missing field `lr`"), "{err}");
        assert!(RunConfig::from_json("[1, 2]").is_err());
    }

    #[test]
    fn cnn_recipes_and_their_flags() {
        let c = resolved(&["train", "--model", "resnet-small"]);
        assert_eq!(
            (c.optimizer, c.lr, c.schedule, c.batch_size, c.epochs),
            (OptimizerKind::Sgd, 0.1, ScheduleKind::Cosine, 128, 10)
        );
        assert_eq!((c.momentum, c.weight_decay, c.nesterov), (0.9, 5e-4, true));
        assert_eq!(
            c.augment,
            AugmentSpec {
                crop: 2,
                flip: true
            }
        );
        assert_eq!(c.normalize, Some(FASHION_MNIST_STATS));
        let c = resolved(&["train", "--model", "nin-small"]);
        assert_eq!(
            (c.optimizer, c.lr, c.batch_size),
            (OptimizerKind::Adam, 2e-3, 128)
        );
        assert_eq!((c.momentum, c.weight_decay, c.nesterov), (0.0, 0.0, false));
        assert_eq!(c.normalize, Some(FASHION_MNIST_STATS));
        // Every flag overrides its recipe value.
        let c = resolved(&[
            "train",
            "--model",
            "resnet-small",
            "--momentum",
            "0.5",
            "--weight-decay",
            "0",
            "--nesterov",
            "false",
            "--augment",
            "none",
            "--normalize",
            "none",
        ]);
        assert_eq!((c.momentum, c.weight_decay, c.nesterov), (0.5, 0.0, false));
        assert_eq!((c.augment, c.normalize), (AugmentSpec::NONE, None));
        let c = resolved(&[
            "train",
            "--momentum",
            "0.9",
            "--nesterov",
            "--augment",
            "flip,crop:3",
            "--normalize",
            "0.5,0.25",
        ]);
        assert_eq!((c.momentum, c.nesterov), (0.9, true));
        assert_eq!(
            c.augment,
            AugmentSpec {
                crop: 3,
                flip: true
            }
        );
        assert_eq!(
            c.normalize,
            Some(NormalizeSpec {
                mean: 0.5,
                std: 0.25
            })
        );
        // Another optimizer than the recipe's starts from its own defaults.
        let c = resolved(&["train", "--model", "resnet-small", "--optimizer", "adam"]);
        assert_eq!(
            (c.lr, c.momentum, c.weight_decay, c.nesterov),
            (1e-3, 0.0, 0.0, false)
        );
        let c = resolved(&["train", "--optimizer", "adam", "--weight-decay", "1e-4"]);
        assert_eq!(c.weight_decay, 1e-4);
        // Flags that do not apply name themselves.
        assert!(
            usage_error(&["train", "--model", "nin-small", "--momentum", "0.9"])
                .starts_with("--momentum: applies to sgd, but the optimizer is adam"),
        );
        assert!(
            usage_error(&["train", "--optimizer", "adam", "--nesterov"]).starts_with("--nesterov")
        );
        assert!(usage_error(&["train", "--nesterov"]).starts_with("--nesterov: needs a momentum"));
    }

    #[test]
    fn new_fields_round_trip_and_old_configs_mean_none_of_them() {
        let c = resolved(&["train", "--model", "resnet-small", "--limit", "256"]);
        let json = serde_json::to_string_pretty(&c).unwrap();
        for field in [
            "\"momentum\": 0.9",
            "\"weight_decay\": 0.0005",
            "\"nesterov\": true",
            "\"augment\": \"crop:2,flip\"",
            "\"normalize\": {",
            "\"mean\": 0.286",
        ] {
            assert!(json.contains(field), "{field} in {json}");
        }
        assert_eq!(RunConfig::from_json(&json).unwrap(), c);
        // A config written before these fields existed: none of them.
        let old = RunConfig::from_json(TODAYS_FORMAT).unwrap();
        assert_eq!(
            (
                old.momentum,
                old.weight_decay,
                old.nesterov,
                old.augment,
                old.normalize
            ),
            (0.0, 0.0, false, AugmentSpec::NONE, None)
        );
        // Bad values name their field.
        let bad = json.replace("\"crop:2,flip\"", "\"rotate\"");
        let err = format!("{:#}", RunConfig::from_json(&bad).unwrap_err());
        assert!(
            err.contains("field `augment`") && err.contains("rotate"),
            "{err}"
        );
    }

    #[test]
    fn augment_and_normalize_values_parse_and_print() {
        for (text, spec) in [
            ("none", AugmentSpec::NONE),
            (
                "flip",
                AugmentSpec {
                    crop: 0,
                    flip: true,
                },
            ),
            (
                "crop:2",
                AugmentSpec {
                    crop: 2,
                    flip: false,
                },
            ),
            (
                "crop:2,flip",
                AugmentSpec {
                    crop: 2,
                    flip: true,
                },
            ),
        ] {
            assert_eq!(text.parse::<AugmentSpec>().unwrap(), spec);
            assert_eq!(spec.to_string(), text);
        }
        for bad in ["crop:0", "crop:x", "crop", "mirror", ""] {
            assert!(bad.parse::<AugmentSpec>().is_err(), "{bad}");
        }
        assert_eq!(NormalizeSpec::parse("none").unwrap(), None);
        assert_eq!(
            NormalizeSpec::parse("0.286, 0.353").unwrap(),
            Some(NormalizeSpec {
                mean: 0.286,
                std: 0.353
            })
        );
        for bad in ["0.2", "0.2,0", "0.2,-1", "a,b", "0.1,inf", "nan,1"] {
            assert!(NormalizeSpec::parse(bad).is_err(), "{bad}");
        }
        let n = Some(FASHION_MNIST_STATS);
        assert_eq!(
            NormalizeSpec::parse(&NormalizeSpec::describe(n)).unwrap(),
            n
        );
    }

    #[test]
    fn cosine_falls_from_the_rate_to_zero() {
        assert_eq!(ScheduleKind::Constant.lr_at(0.5, 7, 10), 0.5);
        assert_eq!(ScheduleKind::Cosine.lr_at(0.5, 0, 10), 0.5);
        assert!((ScheduleKind::Cosine.lr_at(0.5, 5, 10) - 0.25).abs() < 1e-6);
        assert!(ScheduleKind::Cosine.lr_at(0.5, 10, 10).abs() < 1e-6);
    }

    #[test]
    fn choices_parse_by_their_names() {
        assert_eq!(
            parse_choice::<DatasetKind>("dataset", "fashion-mnist").unwrap(),
            DatasetKind::FashionMnist
        );
        let err = parse_choice::<OptimizerKind>("optimizer", "lbfgs")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown optimizer `lbfgs` (expected one of: sgd, adam)"
        );
    }
}
