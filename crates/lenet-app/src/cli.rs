//! The command line: subcommands, options and value checks. Defaults a model trains with come
//! from its recipe in [`crate::models`].

use crate::config::{AugmentSpec, NormalizeSpec, OptimizerKind, ScheduleKind, ranges};
use crate::data::DatasetKind;
use crate::device::DeviceKind;
use crate::models::ModelKind;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Train, evaluate, inspect and explain LeNet on Fashion-MNIST.
#[derive(Parser, Debug)]
#[command(name = "lenet", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (defaults: the d2l chapter's seed LeNet, 10 epochs, SGD lr 0.9, batch 256).
    Train(TrainArgs),
    /// Test accuracy, per-class accuracy and a confusion matrix of a checkpoint.
    Eval(EvalArgs),
    /// Top-3 classes for PNG images or test-set items.
    Predict(PredictArgs),
    /// Layer-by-layer output shapes, parameters and FLOPs of a model.
    Summary(SummaryArgs),
    /// Learned filters and one test image's feature maps as PNG grids.
    Inspect(InspectArgs),
}

/// Options shared by every subcommand that reads data or runs a model.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset to use.
    #[arg(long, value_enum, default_value = "fashion-mnist")]
    pub dataset: DatasetKind,
    /// Data directory: the cache root for fashion-mnist and mnist (files in DIR/DATASET; default: data/ in the workspace, or $FOVEA_DATA), or the folder holding the four files for --dataset idx.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceKind,
}

/// Options of `lenet train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Network to train.
    #[arg(long, value_enum, default_value = "seed")]
    pub model: ModelKind,
    /// Optimizer (default: the model's recipe: sgd for seed, adam for modern).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Passes over the training set (default: the model's recipe, 10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=ranges::MAX_EPOCHS as i64))]
    pub epochs: Option<u32>,
    /// Learning rate (default: the recipe's for its optimizer, else 0.9 for SGD, 0.001 for Adam).
    #[arg(long, value_parser = parse_lr, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Learning-rate schedule (default: the model's recipe: constant for seed, as d2l; cosine for modern).
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleKind>,
    /// SGD momentum (default: the model's recipe: 0.9 for resnet-small, else 0).
    #[arg(long, value_parser = parse_momentum)]
    pub momentum: Option<f32>,
    /// L2 weight decay; batch norm's weights and biases are never decayed (default: the model's recipe: 5e-4 for resnet-small, else 0).
    #[arg(long, value_parser = parse_weight_decay)]
    pub weight_decay: Option<f32>,
    /// Nesterov momentum, `--nesterov` or `--nesterov false` (default: the model's recipe: on for resnet-small).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub nesterov: Option<bool>,
    /// Training augmentation: `none`, or `crop:P` (random crop of the image padded by P zeros) and/or `flip` (random horizontal flip), comma-separated (default: the model's recipe: crop:2,flip for nin-small and resnet-small, none for LeNet).
    #[arg(long, value_name = "SPEC")]
    pub augment: Option<AugmentSpec>,
    /// Input normalisation `MEAN,STD` of pixels in 0..1, or `none` (default: the model's recipe: 0.2860,0.3530 for nin-small and resnet-small, none for LeNet).
    #[arg(long, value_parser = parse_normalize, value_name = "MEAN,STD")]
    pub normalize: Option<NormalizeFlag>,
    /// Examples per batch (default: the model's recipe, 256).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=ranges::MAX_BATCH_SIZE as i64))]
    pub batch_size: Option<u32>,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (default: runs/TIMESTAMP).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory after its last completed epoch.
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Worker threads for the CPU backend (default: all cores, each step on one worker while
    /// that trains faster, as beside another busy process; a given count is always used).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// On a GPU, build every batch on the host and upload it, instead of holding the training set on the device and sending only each batch's indices (the same run, bit for bit; slower).
    #[arg(long)]
    pub upload_batches: bool,
    /// Stop (as if interrupted) after this epoch; for testing resume.
    #[arg(long, hide = true)]
    pub stop_after_epoch: Option<u32>,
    /// Data and device options.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--normalize`'s value: statistics, or `none`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalizeFlag(pub Option<NormalizeSpec>);

/// A command-line value that parsed but does not fit the other settings (`--momentum` with
/// Adam); `lenet` reports it as clap does a usage error: one line naming the flag, exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// The flag (`--momentum`).
    pub flag: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl UsageError {
    /// An error about `flag`.
    pub fn new(flag: &'static str, message: impl Into<String>) -> Self {
        Self {
            flag,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.flag, self.message)
    }
}

impl std::error::Error for UsageError {}

/// Options of `lenet eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Checkpoint file (checkpoint.safetensors of a run, a run directory, or a bare PyTorch state_dict saved with safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The checkpoint's network: must match a Fovea checkpoint's; says which network a bare PyTorch state_dict holds (default there: seed).
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// Where to write confusion.png (default: beside the checkpoint).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Data and device options.
    #[command(flatten)]
    pub data: DataArgs,
}

/// Options of `lenet predict`.
#[derive(Args, Debug, Clone)]
pub struct PredictArgs {
    /// Checkpoint file (or a run directory, or a bare PyTorch state_dict).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The checkpoint's network (see `lenet eval --help`).
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// PNG images to classify.
    #[arg(required_unless_present = "test_index")]
    pub images: Vec<PathBuf>,
    /// Test-set items to classify instead of images.
    #[arg(long, num_args = 1.., conflicts_with = "images")]
    pub test_index: Vec<usize>,
    /// Data and device options.
    #[command(flatten)]
    pub data: DataArgs,
}

/// Options of `lenet summary`.
#[derive(Args, Debug, Clone)]
pub struct SummaryArgs {
    /// Network to describe.
    #[arg(long, value_enum, default_value = "seed")]
    pub model: ModelKind,
    /// Batch size of the example input.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=ranges::MAX_BATCH_SIZE as i64))]
    pub batch: u32,
}

/// Options of `lenet inspect`.
#[derive(Args, Debug, Clone)]
pub struct InspectArgs {
    /// Checkpoint file (or a run directory, or a bare PyTorch state_dict).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The checkpoint's network (see `lenet eval --help`).
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// Test-set item whose feature maps to draw.
    #[arg(long, default_value_t = 0)]
    pub test_index: usize,
    /// Output directory for the PNG grids (default: beside the checkpoint).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Data and device options.
    #[command(flatten)]
    pub data: DataArgs,
}

/// A number, for the range checks below.
fn number(s: &str) -> Result<f32, String> {
    s.parse().map_err(|_| format!("`{s}` is not a number"))
}

/// Accepts a finite, positive learning rate.
fn parse_lr(s: &str) -> Result<f32, String> {
    ranges::lr(number(s)?)
}

/// Accepts a momentum in `[0, 1)`.
fn parse_momentum(s: &str) -> Result<f32, String> {
    ranges::momentum(number(s)?)
}

/// Accepts a finite weight decay of at least 0.
fn parse_weight_decay(s: &str) -> Result<f32, String> {
    ranges::weight_decay(number(s)?)
}

/// Accepts `none` or `MEAN,STD`.
fn parse_normalize(s: &str) -> Result<NormalizeFlag, String> {
    NormalizeSpec::parse(s).map(NormalizeFlag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lenet").chain(args.iter().copied()))
    }

    #[test]
    fn train_defaults_come_from_the_recipe() {
        let Command::Train(t) = parse(&["train"]).unwrap().command else {
            panic!("not train")
        };
        assert_eq!((t.model, t.seed), (ModelKind::Seed, 0));
        // Unset flags are filled from the model's recipe (see `config`'s tests).
        assert_eq!(
            (t.epochs, t.batch_size, t.lr, t.optimizer, t.schedule),
            (None, None, None, None, None)
        );
        assert_eq!(t.data.device, DeviceKind::Auto);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["train", "--batch-size", "0"][..],
            &["train", "--lr", "-1"],
            &["train", "--lr", "NaN"],
            &["train", "--lr", "inf"],
            &["train", "--model", "resnet"],
            &["train", "--device", "tpu"],
            &["train", "--epochs", "0"],
            &["train", "--momentum", "1"],
            &["train", "--momentum", "-0.1"],
            &["train", "--weight-decay", "-1"],
            &["train", "--weight-decay", "NaN"],
            &["train", "--augment", "rotate"],
            &["train", "--augment", "crop:0"],
            &["train", "--normalize", "0.3"],
            &["train", "--normalize", "0.3,0"],
            &["train", "--nesterov", "maybe"],
            &["eval", "--checkpoint", "x", "--model", "vgg"],
            &["predict", "--checkpoint", "x"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }
}
