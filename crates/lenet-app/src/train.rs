//! `lenet train`: the d2l training loop, with progress, metrics, curves, checkpoints and resume.

use crate::checkpoint_io::{CHECKPOINT_FILE, checkpoint_path};
use crate::cli::{DatasetKind, ModelKind, OptimizerKind, ScheduleKind, TrainArgs};
use crate::data::{self, take_first};
use crate::evaluate::accuracy;
use crate::metrics::{self, EpochMetrics};
use crate::model::{build_model, choose_device, model_name, parse_model_name};
use crate::plot::{CurvePoint, draw_curves};
use crate::png_out::write_atomic;
use anyhow::{Context, bail};
use autograd::Tape;
use conv_kernels::{AdamConfig, Device, SgdConfig};
use datasets::{DataLoader, Split};
use indicatif::{ProgressBar, ProgressStyle};
use nn_layers::checkpoint::{self, TrainingState};
use nn_layers::optim::{Adam, Optimizer, Sgd};
use nn_layers::{Module, Sequential};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tensor::{FloatStorage, SeededRng};

/// The settings of a run, saved as `config.json` and reused by `--resume`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    /// `seed` or `modern`.
    pub model: String,
    /// `sgd` or `adam`.
    pub optimizer: String,
    /// Total epochs.
    pub epochs: u32,
    /// Learning rate.
    pub lr: f32,
    /// Batch size.
    pub batch_size: u32,
    /// Seed for initialisation and shuffling.
    pub seed: u64,
    /// `fashion-mnist`, `mnist` or `idx`.
    pub dataset: String,
    /// Training images used (`None`: all).
    pub limit: Option<u32>,
    /// `constant` or `cosine`.
    #[serde(default = "constant")]
    pub schedule: String,
}

fn constant() -> String {
    "constant".into()
}

impl RunConfig {
    /// The learning rate for optimizer step `step` (from 0) of `total`.
    fn lr_at(&self, step: u64, total: u64) -> f32 {
        match self.schedule.as_str() {
            "cosine" => {
                let t = step as f64 / total.max(1) as f64;
                (self.lr as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
            }
            _ => self.lr,
        }
    }
}

impl RunConfig {
    fn from_args(a: &TrainArgs) -> Self {
        let optimizer = a.optimizer.unwrap_or(match a.model {
            ModelKind::Seed => OptimizerKind::Sgd,
            ModelKind::Modern => OptimizerKind::Adam,
        });
        let lr = a.lr.unwrap_or(match optimizer {
            OptimizerKind::Sgd => 0.9,
            OptimizerKind::Adam => 1e-3,
        });
        RunConfig {
            model: model_name(a.model).into(),
            optimizer: match optimizer {
                OptimizerKind::Sgd => "sgd",
                OptimizerKind::Adam => "adam",
            }
            .into(),
            epochs: a.epochs,
            lr,
            batch_size: a.batch_size,
            seed: a.seed,
            dataset: match a.data.dataset {
                DatasetKind::FashionMnist => "fashion-mnist",
                DatasetKind::Mnist => "mnist",
                DatasetKind::Idx => "idx",
            }
            .into(),
            limit: a.limit,
            schedule: match a.schedule.unwrap_or(match a.model {
                ModelKind::Seed => ScheduleKind::Constant,
                ModelKind::Modern => ScheduleKind::Cosine,
            }) {
                ScheduleKind::Constant => "constant",
                ScheduleKind::Cosine => "cosine",
            }
            .into(),
        }
    }
}

fn make_optimizer(
    cfg: &RunConfig,
    device: &Device,
    model: &Sequential,
) -> anyhow::Result<Box<dyn Optimizer>> {
    let params = model.named_parameters();
    Ok(match cfg.optimizer.as_str() {
        "sgd" => Box::new(Sgd::new(device, params, SgdConfig::plain(cfg.lr))?),
        "adam" => Box::new(Adam::new(
            device,
            params,
            AdamConfig {
                lr: cfg.lr,
                ..AdamConfig::default()
            },
        )?),
        other => bail!("unknown optimizer `{other}` in the run's config"),
    })
}

fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{secs}"))
}

fn read_config(dir: &Path) -> anyhow::Result<RunConfig> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run config", path.display()))
}

/// Points of the curves, saved beside the metrics so a resumed run draws the whole history.
fn write_points(path: &Path, points: &[CurvePoint]) -> anyhow::Result<()> {
    let mut s = String::from("epoch,train_loss,train_acc\n");
    for p in points {
        s.push_str(&format!("{},{},{}\n", p.epoch, p.train_loss, p.train_acc));
    }
    write_atomic(path, s.as_bytes())
}

fn read_points(path: &Path) -> Vec<CurvePoint> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<f64> = l.split(',').filter_map(|v| v.parse().ok()).collect();
            (f.len() == 3).then(|| CurvePoint {
                epoch: f[0],
                train_loss: f[1],
                train_acc: f[2],
            })
        })
        .collect()
}

fn progress_bar(batches: usize, epoch: u32, epochs: u32) -> ProgressBar {
    let bar = ProgressBar::new(batches as u64);
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}  ({elapsed})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Runs `lenet train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads as usize)
            .build_global()
            .context("cannot set up the worker threads")?;
    }
    let (out, cfg, resuming) = match &args.resume {
        Some(dir) => (dir.clone(), read_config(dir)?, true),
        None => (
            args.out.clone().unwrap_or_else(default_out_dir),
            RunConfig::from_args(&args),
            false,
        ),
    };
    let model_kind = parse_model_name(&cfg.model)?;
    let (device, reason) = choose_device(args.data.device)?;
    println!("training on {} ({reason})", device.name());

    let mut data_args = args.data.clone();
    data_args.dataset = match cfg.dataset.as_str() {
        "mnist" => DatasetKind::Mnist,
        "idx" => DatasetKind::Idx,
        _ => DatasetKind::FashionMnist,
    };
    let data = data::load(&data_args, &[Split::Train, Split::Test])?;
    let train = match cfg.limit {
        Some(n) => take_first(&data.train, n as usize)?,
        None => data.train,
    };
    let train = Arc::new(train);
    let test = Arc::new(data.test);

    let mut rng = SeededRng::new(cfg.seed);
    let model = build_model(model_kind, &device, &mut rng)?;
    let mut optimizer = make_optimizer(&cfg, &device, &model)?;

    if !resuming && checkpoint_path(&out).is_file() {
        bail!(
            "{} already holds a run; continue it with --resume {0} or choose another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let ckpt = out.join(CHECKPOINT_FILE);
    let metrics_path = out.join("metrics.csv");
    let points_path = out.join("curve_points.csv");
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut points: Vec<CurvePoint> = Vec::new();
    let mut state = TrainingState::default();
    if resuming {
        let path = checkpoint_path(&out);
        if path.exists() {
            state = checkpoint::load(&path, &device, &model, Some(optimizer.as_mut()))
                .with_context(|| format!("cannot resume from {}", path.display()))?;
        }
        // Metrics written after the last checkpoint belong to an epoch that will be redone.
        history = if metrics_path.exists() {
            metrics::read_csv(&metrics_path)?
        } else {
            Vec::new()
        };
        history.retain(|m| (m.epoch as u64) <= state.epoch);
        points = read_points(&points_path);
        points.retain(|p| p.epoch <= state.epoch as f64 + 1e-9);
        println!("resuming {} after epoch {}", out.display(), state.epoch);
    } else {
        let json = serde_json::to_string_pretty(&cfg)?;
        write_atomic(&out.join("config.json"), json.as_bytes())?;
    }
    state.extra.insert("model".into(), cfg.model.clone());
    state.extra.insert("dataset".into(), cfg.dataset.clone());

    let loader = DataLoader::new(train.clone(), cfg.batch_size as usize)?.shuffle(cfg.seed);
    let num_batches = loader.len();
    let total_steps = num_batches as u64 * cfg.epochs as u64;
    let mut train_seconds = 0f64;
    let mut train_examples = 0usize;
    for epoch in state.epoch as u32 + 1..=cfg.epochs {
        let bar = progress_bar(num_batches, epoch, cfg.epochs);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0f64, 0usize);
        let mut epoch_seconds = 0f64;
        for (i, batch) in loader.epoch(epoch as u64 - 1).enumerate() {
            let batch = batch?;
            let started = Instant::now();
            let n = batch.labels.len();
            let tape = Tape::new(&device);
            let x = tape.constant(device.upload_owned(batch.images)?);
            let labels = device.upload_indices(&batch.labels)?;
            let out = model.forward(&x)?.cross_entropy(&labels)?;
            let grads = out.loss.backward()?;
            optimizer.set_lr(cfg.lr_at(state.step, total_steps));
            optimizer.step(&grads)?;
            let loss = device.read_scalar(out.loss.value())?;
            let ok = device.read_scalar(&out.correct)?;
            epoch_seconds += started.elapsed().as_secs_f64();
            if !loss.is_finite() {
                let kept = if ckpt.exists() {
                    format!("the last good checkpoint is {}", ckpt.display())
                } else {
                    "no epoch had completed, so there is no checkpoint".to_string()
                };
                bail!(
                    "the loss became {loss} at epoch {epoch}, batch {} of {num_batches}: training diverged; \
                     try a lower learning rate (--lr, now {}); {kept}",
                    i + 1,
                    cfg.lr,
                );
            }
            loss_sum += loss as f64 * n as f64;
            correct += ok as f64;
            seen += n;
            state.step += 1;
            // d2l's Animator: five points per epoch plus the epoch's end.
            if (i + 1) % (num_batches / 5).max(1) == 0 || i + 1 == num_batches {
                points.push(CurvePoint {
                    epoch: epoch as f64 - 1.0 + (i + 1) as f64 / num_batches as f64,
                    train_loss: loss_sum / seen as f64,
                    train_acc: correct / seen as f64,
                });
            }
            bar.set_message(format!(
                "loss {:.3}, acc {:.3}, {:.0} ex/s",
                loss_sum / seen as f64,
                correct / seen as f64,
                seen as f64 / epoch_seconds.max(1e-9)
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        train_seconds += epoch_seconds;
        train_examples += seen;
        let test_acc = accuracy(&model, &device, test.clone())?;
        let m = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct / seen.max(1) as f64,
            test_acc,
            examples_per_sec: seen as f64 / epoch_seconds.max(1e-9),
            seconds: epoch_seconds,
        };
        println!(
            "epoch {epoch:>3}/{}: loss {:.3}, train acc {:.3}, test acc {:.3}, {:.1} examples/sec",
            cfg.epochs, m.train_loss, m.train_acc, m.test_acc, m.examples_per_sec
        );
        history.push(m);
        // Metrics first, checkpoint last: a kill in between only makes resume redo this epoch.
        metrics::write_csv(&metrics_path, &history)?;
        write_points(&points_path, &points)?;
        let tests: Vec<(f64, f64)> = history
            .iter()
            .map(|m| (m.epoch as f64, m.test_acc))
            .collect();
        draw_curves(
            &out.join("curves.png"),
            &points,
            &tests,
            cfg.epochs as usize,
        )?;
        state.epoch = epoch as u64;
        checkpoint::save(
            &ckpt,
            &device,
            &model,
            Some(optimizer.as_ref()),
            &state,
            FloatStorage::F32,
        )?;
        if args.stop_after_epoch == Some(epoch) {
            println!(
                "stopping after epoch {epoch} as asked; continue with --resume {}",
                out.display()
            );
            break;
        }
    }
    let last = history
        .last()
        .copied()
        .context("the run has no completed epoch")?;
    if train_examples == 0 {
        println!(
            "nothing to do: the run already completed its {} epochs",
            cfg.epochs
        );
    }
    let examples_per_sec = train_examples as f64 / train_seconds.max(1e-9);
    println!(
        "loss {:.3}, train acc {:.3}, test acc {:.3}",
        last.train_loss, last.train_acc, last.test_acc
    );
    println!("{examples_per_sec:.1} examples/sec on {}", device.name());
    println!("wrote {}", out.display());
    Ok(())
}
