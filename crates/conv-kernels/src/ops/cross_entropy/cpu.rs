//! Fused softmax cross-entropy: loss, accuracy and logits gradient in one pass per row.

use super::{CrossEntropyHostKernels, CrossEntropyStats};
use crate::CrossEntropyGeometry;
use crate::cpu::CpuBackend;

/// Mean cross-entropy of `softmax(logits)` against `labels`, writing its logits gradient when
/// `grad` is given.
///
/// Rows are small (a handful of classes), so this runs on one thread; the loss is summed in f64.
fn softmax_cross_entropy(
    g: &CrossEntropyGeometry,
    logits: &[f32],
    labels: &[u32],
    mut grad: Option<&mut [f32]>,
) -> CrossEntropyStats {
    let mut row_scratch = vec![0f32; if grad.is_some() { 0 } else { g.classes }];
    let inv_n = 1.0 / g.n as f32;
    let mut total = 0f64;
    let mut correct = 0u32;
    for (r, (row, &label)) in logits.chunks(g.classes).zip(labels).enumerate() {
        let want = grad.is_some();
        let gr: &mut [f32] = match grad.as_deref_mut() {
            Some(gr) => &mut gr[r * g.classes..(r + 1) * g.classes],
            None => &mut row_scratch,
        };
        let label = label as usize;
        // First maximum wins ties (the arg-max used for accuracy).
        let mut arg = 0;
        for (i, &v) in row.iter().enumerate() {
            if v > row[arg] {
                arg = i;
            }
        }
        let max = row[arg];
        let mut sum = 0f32;
        for (d, &v) in gr.iter_mut().zip(row) {
            let e = (v - max).exp();
            *d = e;
            sum += e;
        }
        let log_z = max + sum.ln();
        if want {
            let inv_sum = 1.0 / sum;
            for d in gr.iter_mut() {
                *d *= inv_sum * inv_n;
            }
            if let Some(d) = gr.get_mut(label) {
                *d -= inv_n;
            }
        }
        total += f64::from(log_z - row.get(label).copied().unwrap_or(max));
        correct += u32::from(arg == label);
    }
    CrossEntropyStats {
        loss: (total / g.n as f64) as f32,
        correct,
    }
}

impl CrossEntropyHostKernels for CpuBackend {
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
