// Element-wise activations and their gradients (taken from the forward output y).
// The host prepends ACT (see activation_fn.wgsl, prepended too: act and dact).

struct Params { len: u32, rows: u32, row_len: u32, pad0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;

@compute @workgroup_size(256)
fn act_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + li;
    if (i >= p.len) { return; }
    dst[i] = act(x[i]);
}

// x holds the forward output y, g the output gradient.
@compute @workgroup_size(256)
fn act_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + li;
    if (i >= p.len) { return; }
    grad_at(i);
}

// dst[i] = g[i] * dact(x[i]), returned too (for the sums below).
fn grad_at(i: u32) -> f32 {
    let v = g[i] * dact(x[i]);
    dst[i] = v;
    return v;
}

// act_bwd fused with the first step of the bias gradient: dst = g * dact(x) as act_bwd, and
// sums[r] = the sum of row r (row_len consecutive values, rows of them) in index order, the
// order of reduce.wgsl's sum_inner.
@compute @workgroup_size(64)
fn act_bwd_row_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let r = (wid.y * nwg.x + wid.x) * 64u + li;
    if (r >= p.rows) { return; }
    var s = 0.0;
    for (var i = r * p.row_len; i < (r + 1u) * p.row_len; i++) { s += grad_at(i); }
    sums[r] = s;
}

// The same for a [rows, row_len] matrix summed over its rows: sums[j] = the sum of column j,
// rows in order (the order of reduce.wgsl's sum_outer).
@compute @workgroup_size(64)
fn act_bwd_column_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) li: u32) {
    let j = (wid.y * nwg.x + wid.x) * 64u + li;
    if (j >= p.row_len) { return; }
    var s = 0.0;
    for (var a = 0u; a < p.rows; a++) { s += grad_at(a * p.row_len + j); }
    sums[j] = s;
}
