// Deterministic reductions (fixed summation order, no atomics).

struct Params { rows: u32, len: u32, total: u32, offset: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// sum_outer_split's second destination.
@group(0) @binding(3) var<storage, read_write> dst2: array<f32>;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// dst[r] = scale * sum of x[offset + r*len + j] for j < len and r*len + j < total (contiguous rows).
@compute @workgroup_size(64)
fn sum_inner(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let r = flat_id(wid, nwg, li);
    if (r >= p.rows) { return; }
    let start = r * p.len;
    let end = min(start + p.len, p.total);
    var s = 0.0;
    for (var i = start; i < end; i++) { s += x[p.offset + i]; }
    dst[r] = s * p.scale;
}

// dst[i] = scale * sum over a < rows of x[a*len + i], for i < len (sum over the leading axis).
@compute @workgroup_size(64)
fn sum_outer(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = flat_id(wid, nwg, li);
    if (i >= p.len) { return; }
    dst[i] = outer_sum(i);
}

// scale * the sum over a < rows of x[a*len + i], rows in order.
fn outer_sum(i: u32) -> f32 {
    var s = 0.0;
    for (var a = 0u; a < p.rows; a++) { s += x[a * p.len + i]; }
    return s * p.scale;
}

// sum_outer with its result split in two tensors: i < offset to dst[i], the rest to
// dst2[i - offset] (a weight gradient and its bias, summed over chunks by one launch).
@compute @workgroup_size(64)
fn sum_outer_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let i = flat_id(wid, nwg, li);
    if (i >= p.len) { return; }
    if (i < p.offset) { dst[i] = outer_sum(i); } else { dst2[i - p.offset] = outer_sum(i); }
}
