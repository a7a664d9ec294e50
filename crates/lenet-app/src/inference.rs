//! Running a model without recording gradients: test accuracy (the training loop's per-epoch
//! evaluation, d2l's `evaluate_accuracy_gpu`), class probabilities and predicted classes.

use crate::models::Net;
use autograd::Tape;
use conv_kernels::Device;
use datasets::{DataLoader, Dataset};
use std::sync::Arc;
use tensor::Tensor;

/// Batch size for evaluation (large: nothing is kept for backward).
const EVAL_BATCH: usize = 1000;

/// Accuracy of `model` on `ds`, reading back one correct-count scalar per batch.
pub fn accuracy(model: &Net, device: &Device, ds: Arc<Dataset>) -> anyhow::Result<f64> {
    let n = ds.len();
    let loader = DataLoader::new(ds, EVAL_BATCH)?;
    let mut correct = 0f64;
    for batch in loader.epoch(0) {
        let batch = batch?;
        let tape = Tape::new(device);
        let _guard = tape.no_grad();
        let x = tape.constant(device.upload_owned(batch.images)?);
        let labels = device.upload_indices(&batch.labels)?;
        let out = model.forward(&x)?.cross_entropy(&labels)?;
        correct += device.read_scalar(&out.correct)? as f64;
    }
    Ok(correct / n.max(1) as f64)
}

/// Class probabilities (softmax of the logits) for a batch of `[n, 1, 28, 28]` inputs.
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
pub fn predictions(model: &Net, device: &Device, ds: Arc<Dataset>) -> anyhow::Result<Vec<usize>> {
    let loader = DataLoader::new(ds, EVAL_BATCH)?;
    let mut out = Vec::new();
    for batch in loader.epoch(0) {
        let probs = probabilities(model, device, batch?.images)?;
        out.extend(probs.argmax_axis(1)?);
    }
    Ok(out)
}
