//! Reference softmax cross-entropy with the log-sum-exp trick.

use super::{CrossEntropyHostKernels, CrossEntropyStats};
use crate::CrossEntropyGeometry;
use crate::reference::Reference;

fn softmax_cross_entropy(
    g: &CrossEntropyGeometry,
    logits: &[f32],
    labels: &[u32],
    mut grad: Option<&mut [f32]>,
) -> CrossEntropyStats {
    let mut total = 0f64;
    let mut correct = 0;
    for (r, row) in logits.chunks(g.classes).enumerate() {
        let label = labels[r] as usize;
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let sum_exp: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        let log_z = max + sum_exp.ln();
        total += log_z - row[label] as f64;
        let argmax = row
            .iter()
            .enumerate()
            .fold(0, |best, (i, &v)| if v > row[best] { i } else { best });
        correct += u32::from(argmax == label);
        let Some(grad) = grad.as_deref_mut() else {
            continue;
        };
        for (c, gv) in grad[r * g.classes..(r + 1) * g.classes]
            .iter_mut()
            .enumerate()
        {
            let p = (row[c] as f64 - log_z).exp();
            let onehot = if c == label { 1.0 } else { 0.0 };
            *gv = ((p - onehot) / g.n as f64) as f32;
        }
    }
    CrossEntropyStats {
        loss: (total / g.n as f64) as f32,
        correct,
    }
}

impl CrossEntropyHostKernels for Reference {
    fn softmax_cross_entropy(
        &self,
        g: &CrossEntropyGeometry,
        logits: &[f32],
        labels: &[u32],
        grad_logits: Option<&mut [f32]>,
    ) -> CrossEntropyStats {
        softmax_cross_entropy(g, logits, labels, grad_logits)
    }
}
