//! Running a model without recording gradients: test accuracy (the training loop's per-epoch
//! evaluation, d2l's `evaluate_accuracy_gpu`), class probabilities and predicted classes. Inputs
//! are normalised as the model was trained (`normalize`); evaluation is never augmented.

use crate::config::NormalizeSpec;
use crate::models::Net;
use crate::resident::{DeviceBatch, ResidentSet};
use autograd::Tape;
use conv_kernels::Device;
use datasets::{DataLoader, Dataset};
use std::sync::Arc;
use tensor::Tensor;

/// Batch size for evaluation (large: nothing is kept for backward).
const EVAL_BATCH: usize = 1000;

/// An evaluation loader over `ds`: in order, normalised, never augmented.
pub fn eval_loader(
    ds: Arc<Dataset>,
    normalize: Option<NormalizeSpec>,
) -> anyhow::Result<DataLoader> {
    let loader = DataLoader::new(ds, EVAL_BATCH)?;
    Ok(match normalize {
        Some(n) => loader.normalize(n.loader())?,
        None => loader,
    })
}

/// Pixels scaled to `0..=1`, normalised when `normalize` says so: a model's input.
pub fn model_input(
    pixels: impl IntoIterator<Item = f32>,
    normalize: Option<NormalizeSpec>,
) -> Vec<f32> {
    match normalize {
        Some(n) => pixels.into_iter().map(|x| n.apply(x)).collect(),
        None => pixels.into_iter().collect(),
    }
}

/// Accuracy of `model` on `ds`; the batches' correct counts are summed on the device and read
/// back once.
pub fn accuracy(
    model: &Net,
    device: &Device,
    ds: Arc<Dataset>,
    normalize: Option<NormalizeSpec>,
) -> anyhow::Result<f64> {
    let loader = eval_loader(ds, normalize)?;
    let batches = loader
        .epoch(0)
        .map(|batch| DeviceBatch::upload(device, batch?));
    count_correct(model, device, batches, loader.dataset().len())
}

/// Accuracy of `model` on a test set held on the device (`set`, uploaded from `loader`'s
/// dataset, see [`eval_loader`]): only each batch's indices are sent, and one count is read back.
pub fn accuracy_on_device(
    model: &Net,
    device: &Device,
    set: &ResidentSet,
    loader: &DataLoader,
) -> anyhow::Result<f64> {
    let batches = loader
        .batch_indices(0)
        .into_iter()
        .map(|indices| set.batch(device, &indices));
    count_correct(model, device, batches, loader.dataset().len())
}

/// The fraction of `n` items the model gets right over `batches`, summing each batch's count
/// on the device and reading the total back once.
fn count_correct(
    model: &Net,
    device: &Device,
    batches: impl Iterator<Item = anyhow::Result<DeviceBatch>>,
    n: usize,
) -> anyhow::Result<f64> {
    let mut total = None;
    for batch in batches {
        let batch = batch?;
        let correct = device.run_on_workers(|| -> anyhow::Result<_> {
            let tape = Tape::new(device);
            let _guard = tape.no_grad();
            let out = model
                .forward(&tape.constant(batch.images))?
                .cross_entropy(&batch.labels)?;
            Ok(out.correct)
        })?;
        total = Some(match total {
            None => correct,
            Some(t) => device.add(&t, &correct)?,
        });
    }
    let correct = match total {
        Some(t) => device.read_scalar(&t)? as f64,
        None => 0.0,
    };
    Ok(correct / n.max(1) as f64)
}

/// Class probabilities (softmax of the logits) for a batch of `[n, 1, 28, 28]` model inputs
/// (already normalised: see [`model_input`]).
pub fn probabilities(model: &Net, device: &Device, images: Tensor) -> anyhow::Result<Tensor> {
    let tape = Tape::new(device);
    let _guard = tape.no_grad();
    let logits = model.forward(&tape.constant(device.upload_owned(images)?))?;
    let logits = device.to_host(logits.value())?;
    let classes = logits.dims()[1];
    let mut probs = logits.into_vec();
    for row in probs.chunks_mut(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
    Ok(Tensor::from_vec(&[probs.len() / classes, classes], probs)?)
}

/// The predicted class of every item of `ds`, in order.
pub fn predictions(
    model: &Net,
    device: &Device,
    ds: Arc<Dataset>,
    normalize: Option<NormalizeSpec>,
) -> anyhow::Result<Vec<usize>> {
    let loader = eval_loader(ds, normalize)?;
    let mut out = Vec::new();
    for batch in loader.epoch(0) {
        let probs = probabilities(model, device, batch?.images)?;
        out.extend(probs.argmax_axis(1)?);
    }
    Ok(out)
}
