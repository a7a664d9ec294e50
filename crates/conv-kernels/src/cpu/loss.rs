//! Fused softmax cross-entropy: loss, accuracy and logits gradient in one pass per row.

use crate::host::CrossEntropyStats;
use crate::spec::CrossEntropyGeometry;

/// Mean cross-entropy of `softmax(logits)` against `labels`, writing its logits gradient.
///
/// Rows are small (a handful of classes), so this runs on one thread; the loss is summed in f64.
pub(crate) fn softmax_cross_entropy(
    g: &CrossEntropyGeometry,
    logits: &[f32],
    labels: &[u32],
    grad: &mut [f32],
) -> CrossEntropyStats {
    let inv_n = 1.0 / g.n as f32;
    let mut total = 0f64;
    let mut correct = 0u32;
    for ((row, gr), &label) in logits
        .chunks(g.classes)
        .zip(grad.chunks_mut(g.classes))
        .zip(labels)
    {
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
        let inv_sum = 1.0 / sum;
        for d in gr.iter_mut() {
            *d *= inv_sum * inv_n;
        }
        if let Some(d) = gr.get_mut(label) {
            *d -= inv_n;
        }
        total += f64::from(log_z - row.get(label).copied().unwrap_or(max));
        correct += u32::from(arg == label);
    }
    CrossEntropyStats {
        loss: (total / g.n as f64) as f32,
        correct,
    }
}
