//! A run's settings, [`RunConfig`]: resolved once from the command line and the model's recipe,
//! saved as `config.json` and read back by `--resume`. Choices are typed enums that serialise
//! under their command-line names (`seed`, `sgd`, `cosine`, `fashion-mnist`).

use crate::cli::TrainArgs;
use crate::data::DatasetKind;
use crate::file_out::write_atomic;
use crate::models::ModelKind;
use anyhow::{Context, anyhow};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
}

impl RunConfig {
    /// The settings `lenet train` runs with: each flag given, else the model's recipe.
    pub fn from_args(a: &TrainArgs) -> Self {
        let recipe = a.model.spec().recipe;
        let optimizer = a.optimizer.unwrap_or(recipe.optimizer);
        RunConfig {
            model: a.model,
            optimizer,
            epochs: a.epochs.unwrap_or(recipe.epochs),
            lr: a.lr.unwrap_or_else(|| recipe.lr_for(optimizer)),
            batch_size: a.batch_size.unwrap_or(recipe.batch_size),
            seed: a.seed,
            dataset: a.data.dataset,
            limit: a.limit,
            schedule: a.schedule.unwrap_or(recipe.schedule),
        }
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

    /// Parses a config; a bad value's error names its field and the accepted values.
    pub fn from_json(text: &str) -> anyhow::Result<RunConfig> {
        serde_json::from_str(text).map_err(|e| {
            let missing = e.to_string().starts_with("missing field");
            match key_at(text, e.line(), e.column()) {
                Some(key) if e.is_data() && !missing => anyhow!("field `{key}`: {e}"),
                _ => anyhow!(e),
            }
        })
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
        RunConfig::from_args(&t)
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
            }
        );
        assert_eq!(
            resolved(&["train", "--model", "modern"]),
            RunConfig::from_json(TODAYS_FORMAT).unwrap()
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
            ("\"modern\"", "\"resnet\"", "model", "`seed` or `modern`"),
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
