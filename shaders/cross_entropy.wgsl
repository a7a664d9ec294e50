// Fused softmax cross-entropy, one invocation per row: the row's loss, whether its arg-max
// (first maximum) equals the label, and the gradient of the *mean* loss with respect to the
// logits (only when `want_grad` is 1). Row results are summed afterwards by `ce_sums` (fixed
// order, no atomics).

struct Params { n: u32, classes: u32, inv_n: f32, want_grad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
// [n] row losses followed by [n] correct flags (1.0 or 0.0).
@group(0) @binding(4) var<storage, read_write> rows: array<f32>;
// One element each: the mean loss and the count of correct rows.
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> correct: array<f32>;

@compute @workgroup_size(64)
fn ce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let r = (wid.y * nwg.x + wid.x) * 64u + li;
    if (r >= p.n) { return; }
    let base = r * p.classes;
    let label = labels[r];
    var mx = logits[base];
    var best = 0u;
    for (var c = 1u; c < p.classes; c++) {
        let v = logits[base + c];
        if (v > mx) { mx = v; best = c; }
    }
    var se = 0.0;
    for (var c = 0u; c < p.classes; c++) { se += exp(logits[base + c] - mx); }
    // Differences to the maximum stay exact for large logits; log_z itself would round.
    let inv_se = 1.0 / se;
    if (p.want_grad != 0u) {
        for (var c = 0u; c < p.classes; c++) {
            let prob = exp(logits[base + c] - mx) * inv_se;
            grad[base + c] = (prob - select(0.0, 1.0, c == label)) * p.inv_n;
        }
    }
    rows[r] = (mx - logits[base + label]) + log(se);
    rows[p.n + r] = select(0.0, 1.0, best == label);
}

// Two invocations: 0 sums the row losses (then scales by 1/n), 1 counts the correct rows; rows
// in order, as reduce.wgsl's sum_inner would.
@compute @workgroup_size(2)
fn ce_sums(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var r = 0u; r < p.n; r++) { s += rows[li * p.n + r]; }
    if (li == 0u) { loss[0] = s * p.inv_n; } else { correct[0] = s; }
}
