//! `lenet train`: d2l's `train_ch6` loop, with progress, metrics, curves, checkpoints and resume.
//!
//! [`run`] reads as the loop: plan the run (its directory and settings), choose the device, load
//! the data, build the model and optimizer, open the run directory (fresh, or resumed after its
//! last checkpoint), then per epoch: train, evaluate on the test set, record the metrics and
//! curves, checkpoint; finally report.

use crate::cli::{DataArgs, TrainArgs};
use crate::config::{NormalizeSpec, OptimizerKind, RunConfig, choice_name};
use crate::data::{self, take_first};
use crate::device::choose_device;
use crate::inference::{accuracy, accuracy_on_device, eval_loader};
use crate::interrupt::{StopRequests, StopSignal, Stopped};
use crate::metrics::{self, EpochMetrics};
use crate::models::Net;
use crate::plot::{CurvePoint, draw_curves};
use crate::resident::{DeviceBatch, ResidentSet};
use crate::restore::NORMALIZE_KEY;
use crate::run_dir::{RunDir, read_points, write_points};
use crate::worker_choice::WorkerChoice;
use anyhow::{Context, bail};
use autograd::Tape;
use conv_kernels::{AdamConfig, CommandStats, Device, SgdConfig, TransferStats};
use datasets::{DataLoader, Dataset, Split};
use indicatif::{ProgressBar, ProgressStyle};
use nn_layers::checkpoint::{self, TrainingState};
use nn_layers::optim::{Adam, Optimizer, Sgd, batch_norm_parameters};
use std::sync::Arc;
use std::time::Instant;
use tensor::{FloatStorage, SeededRng};

/// Runs `lenet train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let stops = StopRequests::install()?;
    set_worker_threads(args.threads)?;
    let plan = plan_run(&args)?;
    let cfg = &plan.cfg;
    let (device, reason) = choose_device(args.data.device)?;
    println!("training on {} ({reason})", device.name());
    let (train_set, test_set) = load_data(cfg, &args.data)?;
    let loader = train_loader(cfg, train_set)?;
    let mut net = cfg.model.build(&device, &mut SeededRng::new(cfg.seed))?;
    let mut optimizer = build_optimizer(cfg, &device, &net)?;
    let mut progress = open_run_dir(&plan, &device, &net, optimizer.as_mut(), loader.len())?;
    let resident = if args.upload_batches {
        None
    } else {
        ResidentSet::upload(&device, &loader)?
    };
    let test_loader = eval_loader(test_set.clone(), cfg.normalize)?;
    let resident_test = match &resident {
        Some(_) => ResidentSet::upload(&device, &test_loader)?,
        None => None,
    };
    if resident.is_some() {
        println!(
            "training and test sets held on the device ({} and {} images): each step sends \
             only its indices",
            loader.dataset().len(),
            test_set.len()
        );
    }

    // On the CPU, unless `--threads` fixed the pool, steps move to one worker while that trains
    // faster (another busy process on the machine).
    let mut workers = WorkerChoice::new(!device.is_gpu() && args.threads.is_none())?;
    let mut totals = Totals::default();
    for epoch in progress.state.epoch as u32 + 1..=cfg.epochs {
        if let Some(signal) = stops.requested() {
            return Err(stopped_between_epochs(&plan, &progress, signal));
        }
        let counters = (device.command_stats(), device.transfer_stats());
        let steps_before = progress.state.step;
        let times_before = device.kernel_times();
        let stats = match train_epoch(
            &mut net,
            optimizer.as_mut(),
            &device,
            &loader,
            resident.as_ref(),
            epoch,
            &plan,
            &mut progress,
            &stops,
            &mut workers,
        )? {
            EpochEnd::Finished(stats) => stats,
            EpochEnd::Stopped(stats, signal) => {
                save_partial_epoch(
                    &plan,
                    &device,
                    &net,
                    optimizer.as_ref(),
                    &mut progress,
                    &stats,
                )?;
                return Err(stopped_in_epoch(
                    &plan,
                    &progress,
                    epoch,
                    loader.len(),
                    signal,
                ));
            }
        };
        totals.add(&stats);
        if device.gpu_context().is_some() {
            let steps = progress.state.step - steps_before;
            println!("{}", gpu_step_counters(&device, counters, steps));
            let times = device.kernel_times().per_step_since(&times_before, steps);
            if !times.kernels.is_empty() {
                println!("  kernel ms per step (profiled, FOVEA_GPU_PROFILE=1; {times})");
            }
        }
        net.eval();
        let test_acc = match &resident_test {
            Some(set) => accuracy_on_device(&net, &device, set, &test_loader)?,
            None => accuracy(&net, &device, test_set.clone(), cfg.normalize)?,
        };
        let m = stats.metrics(epoch, test_acc);
        println!(
            "epoch {epoch:>3}/{}: loss {:.3}, train acc {:.3}, test acc {:.3}, {:.1} examples/sec",
            cfg.epochs, m.train_loss, m.train_acc, m.test_acc, m.examples_per_sec
        );
        progress.history.push(m);
        progress.state.epoch = epoch as u64;
        EpochStats::clear_saved(&mut progress.state);
        save_epoch(&plan, &device, &net, optimizer.as_ref(), &progress)?;
        if args.stop_after_epoch == Some(epoch) {
            println!(
                "stopping after epoch {epoch} as asked; continue with --resume {}",
                plan.dir.root.display()
            );
            break;
        }
    }
    report(&plan, &progress, &totals, &device)
}

/// What the GPU did per training step of an epoch, from the counters taken before it: kernels
/// launched, submissions, and bytes each way (the batch's indices up and the loss and correct
/// count down, when the training set is held on the device).
fn gpu_step_counters(
    device: &Device,
    (commands, transfers): (CommandStats, TransferStats),
    steps: u64,
) -> String {
    let (c, t) = (device.command_stats(), device.transfer_stats());
    let per = |after: u64, before: u64| (after - before) as f64 / steps.max(1) as f64;
    format!(
        "  per step on the GPU: {:.0} dispatches, {:.1} submits, {:.0} bytes up, {:.0} bytes down",
        per(c.dispatches, commands.dispatches),
        per(c.submits, commands.submits),
        per(t.upload_bytes, transfers.upload_bytes),
        per(t.download_bytes, transfers.download_bytes),
    )
}

/// How to go on after a stop signal.
fn resume_hint(plan: &Plan) -> String {
    format!(
        "continue with: lenet train --resume {}",
        plan.dir.root.display()
    )
}

/// The error for a stop signal read between epochs: the checkpoint (if any) already holds
/// every finished epoch.
fn stopped_between_epochs(plan: &Plan, progress: &Progress, signal: StopSignal) -> anyhow::Error {
    let done = progress.state.epoch;
    let message = if plan.dir.checkpoint().exists() {
        format!(
            "stopped by {}; {} holds the run after epoch {done} (step {}); {}",
            signal.name(),
            plan.dir.checkpoint().display(),
            progress.state.step,
            resume_hint(plan)
        )
    } else {
        format!(
            "stopped by {} before the first batch; nothing was trained, so nothing was saved",
            signal.name()
        )
    };
    Stopped { signal, message }.into()
}

/// The error for a stop signal read inside an epoch, after [`save_partial_epoch`].
fn stopped_in_epoch(
    plan: &Plan,
    progress: &Progress,
    epoch: u32,
    batches: usize,
    signal: StopSignal,
) -> anyhow::Error {
    let done = progress.state.step as usize - (epoch as usize - 1) * batches;
    let message = format!(
        "stopped by {} at epoch {epoch}, batch {done} of {batches}; saved the run at that batch in {}; {}",
        signal.name(),
        plan.dir.checkpoint().display(),
        resume_hint(plan)
    );
    Stopped { signal, message }.into()
}

/// Sizes the worker pool of the CPU backend (`--threads`).
fn set_worker_threads(threads: Option<u16>) -> anyhow::Result<()> {
    if let Some(threads) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads as usize)
            .build_global()
            .context("cannot set up the worker threads")?;
    }
    Ok(())
}

/// Where a run goes and what it trains: decided before anything is loaded or written.
struct Plan {
    dir: RunDir,
    cfg: RunConfig,
    resuming: bool,
}

/// A new run's settings from the flags and the model's recipe, or a resumed run's saved ones.
/// Refuses to start a new run in a directory that already holds one.
fn plan_run(args: &TrainArgs) -> anyhow::Result<Plan> {
    let plan = match &args.resume {
        Some(dir) => {
            let dir = RunDir::new(Some(dir));
            let cfg = RunConfig::read(&dir.config())?;
            cfg.check_resume_flags(args)?;
            Plan {
                cfg,
                dir,
                resuming: true,
            }
        }
        None => Plan {
            dir: RunDir::new(args.out.as_deref()),
            cfg: RunConfig::from_args(args)?,
            resuming: false,
        },
    };
    if !plan.resuming && plan.dir.holds_a_run() {
        bail!(
            "{} already holds a run; continue it with --resume {0} or choose another --out",
            plan.dir.root.display()
        );
    }
    Ok(plan)
}

/// The run's dataset: its training split (cut to `limit`) and its test split.
fn load_data(cfg: &RunConfig, args: &DataArgs) -> anyhow::Result<(Arc<Dataset>, Arc<Dataset>)> {
    let data_args = DataArgs {
        dataset: cfg.dataset,
        ..args.clone()
    };
    let data = data::load(&data_args, &[Split::Train, Split::Test])?;
    let train = match cfg.limit {
        Some(n) => take_first(&data.train, n as usize)?,
        None => data.train,
    };
    Ok((Arc::new(train), Arc::new(data.test)))
}

/// The training loader: shuffled from the run's seed, augmented and normalised as the run
/// says (augmentation settings that do not fit the images fail here, before any epoch).
fn train_loader(cfg: &RunConfig, train_set: Arc<Dataset>) -> anyhow::Result<DataLoader> {
    let loader = DataLoader::new(train_set, cfg.batch_size as usize)?
        .shuffle(cfg.seed)
        .augment(cfg.augment.loader())
        .with_context(|| format!("--augment {}", cfg.augment))?;
    Ok(match cfg.loader_normalize() {
        Some(n) => loader.normalize(n)?,
        None => loader,
    })
}

/// The run's optimizer over the network's parameters, at the run's base learning rate, with
/// its momentum and weight decay; batch norm's weights and biases are not decayed.
pub fn build_optimizer(
    cfg: &RunConfig,
    device: &Device,
    net: &Net,
) -> anyhow::Result<Box<dyn Optimizer>> {
    let params = net.named_parameters();
    Ok(match cfg.optimizer {
        OptimizerKind::Sgd => {
            let sgd = SgdConfig {
                lr: cfg.lr,
                momentum: cfg.momentum,
                weight_decay: cfg.weight_decay,
                nesterov: cfg.nesterov,
            };
            let norm = batch_norm_parameters(net.module());
            Box::new(Sgd::new_with(device, params, sgd, |name| {
                norm.iter().any(|n| n == name)
            })?)
        }
        OptimizerKind::Adam => Box::new(Adam::new(
            device,
            params,
            AdamConfig {
                lr: cfg.lr,
                weight_decay: cfg.weight_decay,
                ..AdamConfig::default()
            },
        )?),
    })
}

/// Where training stands: the checkpoint's position plus the metrics and curve points so far.
struct Progress {
    state: TrainingState,
    history: Vec<EpochMetrics>,
    points: Vec<CurvePoint>,
    /// The sums of an epoch a stop signal interrupted, continued by the next `train_epoch`.
    partial: EpochStats,
}

/// Creates the run directory and removes temporaries a crash left there. A new run writes its
/// config; a resumed one loads its last checkpoint into `net` and `optimizer` and keeps the
/// metrics and curve points up to the checkpoint's position (later ones belong to work that
/// will be redone). A checkpoint saved inside an epoch (after a stop signal) also brings back
/// that epoch's sums so far; its step count says where the epoch goes on.
fn open_run_dir(
    plan: &Plan,
    device: &Device,
    net: &Net,
    optimizer: &mut dyn Optimizer,
    batches_per_epoch: usize,
) -> anyhow::Result<Progress> {
    let dir = &plan.dir;
    std::fs::create_dir_all(&dir.root)
        .with_context(|| format!("cannot create {}", dir.root.display()))?;
    dir.remove_stale_temporaries()?;
    let mut progress = Progress {
        state: TrainingState::default(),
        history: Vec::new(),
        points: Vec::new(),
        partial: EpochStats::default(),
    };
    if plan.resuming {
        let path = dir.checkpoint();
        if path.exists() {
            progress.state = checkpoint::load(&path, device, net.module(), Some(optimizer))
                .with_context(|| format!("cannot resume from {}", path.display()))?;
        }
        let done = progress.state.epoch;
        let mid_epoch = progress.state.step > done * batches_per_epoch as u64;
        if mid_epoch {
            progress.partial = EpochStats::saved(&progress.state)
                .with_context(|| format!("cannot resume from {}", path.display()))?;
        }
        if dir.metrics().exists() {
            progress.history = metrics::read_csv(&dir.metrics())?;
        }
        progress.history.retain(|m| (m.epoch as u64) <= done);
        let position = progress.state.step as f64 / batches_per_epoch.max(1) as f64;
        progress.points = read_points(&dir.curve_points());
        progress.points.retain(|p| p.epoch <= position + 1e-9);
        if mid_epoch {
            println!(
                "resuming {} inside epoch {}, after batch {} of {batches_per_epoch}",
                dir.root.display(),
                done + 1,
                progress.state.step - done * batches_per_epoch as u64
            );
        } else {
            println!("resuming {} after epoch {done}", dir.root.display());
        }
    } else {
        plan.cfg.write(&dir.config())?;
    }
    let extra = &mut progress.state.extra;
    extra.insert("model".into(), plan.cfg.model.name());
    extra.insert("dataset".into(), choice_name(plan.cfg.dataset));
    extra.insert(
        NORMALIZE_KEY.into(),
        NormalizeSpec::describe(plan.cfg.normalize),
    );
    extra.insert("augment".into(), plan.cfg.augment.to_string());
    Ok(progress)
}

/// One epoch's training sums.
#[derive(Clone, Copy, Debug, Default)]
struct EpochStats {
    loss_sum: f64,
    correct: f64,
    seen: usize,
    seconds: f64,
}

/// The checkpoint entries that carry an interrupted epoch's sums.
const PARTIAL_KEYS: [&str; 4] = [
    "partial_epoch.loss_sum",
    "partial_epoch.correct",
    "partial_epoch.seen",
    "partial_epoch.seconds",
];

impl EpochStats {
    /// Records the sums in the checkpoint's free-form entries (exactly: Rust prints the
    /// shortest string that parses back to the same `f64`).
    fn save(&self, state: &mut TrainingState) {
        let values = [self.loss_sum, self.correct, self.seen as f64, self.seconds];
        for (key, value) in PARTIAL_KEYS.iter().zip(values) {
            state.extra.insert((*key).into(), value.to_string());
        }
    }

    /// The sums [`EpochStats::save`] recorded; an error when a checkpoint saved inside an
    /// epoch lacks them or holds something else.
    fn saved(state: &TrainingState) -> anyhow::Result<EpochStats> {
        let mut values = [0f64; 4];
        for (key, value) in PARTIAL_KEYS.iter().zip(&mut values) {
            let text = state.extra.get(*key).with_context(|| {
                format!("the checkpoint stops inside an epoch but has no `{key}` entry")
            })?;
            *value = text
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .with_context(|| format!("entry `{key}` is `{text}`, not a count"))?;
        }
        Ok(EpochStats {
            loss_sum: values[0],
            correct: values[1],
            seen: values[2] as usize,
            seconds: values[3],
        })
    }

    /// Removes the entries of [`EpochStats::save`] once the epoch is finished.
    fn clear_saved(state: &mut TrainingState) {
        for key in PARTIAL_KEYS {
            state.extra.remove(key);
        }
    }

    /// The epoch's row of `metrics.csv`.
    fn metrics(&self, epoch: u32, test_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: self.loss_sum / self.seen.max(1) as f64,
            train_acc: self.correct / self.seen.max(1) as f64,
            test_acc,
            examples_per_sec: self.seen as f64 / self.seconds.max(1e-9),
            seconds: self.seconds,
        }
    }
}

/// Training time and examples over the epochs run by this invocation.
#[derive(Default)]
struct Totals {
    seconds: f64,
    examples: usize,
}

impl Totals {
    fn add(&mut self, epoch: &EpochStats) {
        self.seconds += epoch.seconds;
        self.examples += epoch.seen;
    }
}

/// How an epoch's training ended.
enum EpochEnd {
    /// Every batch was trained.
    Finished(EpochStats),
    /// A stop signal was read at a batch boundary; the sums so far.
    Stopped(EpochStats, StopSignal),
}

/// One pass over the training set (d2l's `train_epoch`): forward, loss, backward, optimizer
/// step per batch, with the learning rate of the schedule; stops with a clear error when the
/// loss stops being finite. Adds five curve points per epoch, as d2l's Animator. An epoch
/// interrupted before goes on after its last trained batch, with its sums so far; a stop
/// signal ends it at the next batch boundary.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    net: &mut Net,
    optimizer: &mut dyn Optimizer,
    device: &Device,
    loader: &DataLoader,
    resident: Option<&ResidentSet>,
    epoch: u32,
    plan: &Plan,
    progress: &mut Progress,
    stops: &StopRequests,
    workers: &mut WorkerChoice,
) -> anyhow::Result<EpochEnd> {
    let cfg = &plan.cfg;
    net.train();
    let num_batches = loader.len();
    let total_steps = num_batches as u64 * cfg.epochs as u64;
    let first = (progress.state.step - (epoch as u64 - 1) * num_batches as u64) as usize;
    let bar = progress_bar(num_batches, epoch, cfg.epochs);
    bar.set_position(first as u64);
    let mut s = std::mem::take(&mut progress.partial);
    let batches: Box<dyn Iterator<Item = anyhow::Result<DeviceBatch>> + '_> = match resident {
        Some(set) => Box::new(
            loader
                .batch_indices(epoch as u64 - 1)
                .into_iter()
                .skip(first)
                .map(move |indices| set.batch(device, &indices)),
        ),
        None => Box::new(
            loader
                .epoch_from(epoch as u64 - 1, first)
                .map(|batch| DeviceBatch::upload(device, batch?)),
        ),
    };
    for (i, batch) in (first..).zip(batches) {
        if let Some(signal) = stops.requested() {
            bar.finish_and_clear();
            return Ok(EpochEnd::Stopped(s, signal));
        }
        let started = Instant::now();
        let batch = batch?;
        let n = batch.labels.len();
        let lr = cfg.lr_at(progress.state.step, total_steps);
        let net = &mut *net;
        let optimizer = &mut *optimizer;
        let step = move || -> anyhow::Result<(f32, f32)> {
            let tape = Tape::new(device);
            let x = tape.constant(batch.images);
            let out = net.forward(&x)?.cross_entropy(&batch.labels)?;
            let grads = out.loss.backward()?;
            optimizer.set_lr(lr);
            optimizer.step(&grads)?;
            let [loss, ok] = device.read_scalars(&[out.loss.value(), &out.correct])?[..] else {
                anyhow::bail!("a step's read-back did not return its loss and correct count");
            };
            Ok((loss, ok))
        };
        let (loss, ok) = workers.run(move || device.run_on_workers(step))?;
        s.seconds += started.elapsed().as_secs_f64();
        if !loss.is_finite() {
            let ckpt = plan.dir.checkpoint();
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
        s.loss_sum += loss as f64 * n as f64;
        s.correct += ok as f64;
        s.seen += n;
        progress.state.step += 1;
        if (i + 1) % (num_batches / 5).max(1) == 0 || i + 1 == num_batches {
            progress.points.push(CurvePoint {
                epoch: epoch as f64 - 1.0 + (i + 1) as f64 / num_batches as f64,
                train_loss: s.loss_sum / s.seen as f64,
                train_acc: s.correct / s.seen as f64,
            });
        }
        bar.set_message(format!(
            "loss {:.3}, acc {:.3}, {:.0} ex/s",
            s.loss_sum / s.seen as f64,
            s.correct / s.seen as f64,
            s.seen as f64 / s.seconds.max(1e-9)
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(EpochEnd::Finished(s))
}

/// Writes the metrics, the curve points and the chart, then the checkpoint: a kill in between
/// only makes resume redo this epoch.
fn save_epoch(
    plan: &Plan,
    device: &Device,
    net: &Net,
    optimizer: &dyn Optimizer,
    progress: &Progress,
) -> anyhow::Result<()> {
    let dir = &plan.dir;
    metrics::write_csv(&dir.metrics(), &progress.history)?;
    write_points(&dir.curve_points(), &progress.points)?;
    let tests: Vec<(f64, f64)> = progress
        .history
        .iter()
        .map(|m| (m.epoch as f64, m.test_acc))
        .collect();
    draw_curves(
        &dir.curves(),
        &progress.points,
        &tests,
        plan.cfg.epochs as usize,
    )?;
    checkpoint::save(
        dir.checkpoint(),
        device,
        net.module(),
        Some(optimizer),
        &progress.state,
        FloatStorage::F32,
    )?;
    Ok(())
}

/// Saves a run a stop signal interrupted inside an epoch: the curve points so far and a
/// checkpoint at the last trained batch carrying the epoch's sums (metrics.csv and the chart
/// keep the finished epochs only).
fn save_partial_epoch(
    plan: &Plan,
    device: &Device,
    net: &Net,
    optimizer: &dyn Optimizer,
    progress: &mut Progress,
    stats: &EpochStats,
) -> anyhow::Result<()> {
    stats.save(&mut progress.state);
    write_points(&plan.dir.curve_points(), &progress.points)?;
    checkpoint::save(
        plan.dir.checkpoint(),
        device,
        net.module(),
        Some(optimizer),
        &progress.state,
        FloatStorage::F32,
    )?;
    Ok(())
}

/// d2l's closing lines: the last epoch's loss and accuracies, and the training throughput.
fn report(
    plan: &Plan,
    progress: &Progress,
    totals: &Totals,
    device: &Device,
) -> anyhow::Result<()> {
    let last = progress
        .history
        .last()
        .copied()
        .context("the run has no completed epoch")?;
    if totals.examples == 0 {
        println!(
            "nothing to do: the run already completed its {} epochs",
            plan.cfg.epochs
        );
    }
    let examples_per_sec = totals.examples as f64 / totals.seconds.max(1e-9);
    println!(
        "loss {:.3}, train acc {:.3}, test acc {:.3}",
        last.train_loss, last.train_acc, last.test_acc
    );
    println!("{examples_per_sec:.1} examples/sec on {}", device.name());
    println!("wrote {}", plan.dir.root.display());
    Ok(())
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
