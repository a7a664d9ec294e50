// Deterministic reductions (fixed summation order, no atomics).

struct Params { rows: u32, len: u32, total: u32, offset: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// sum_outer_split's second destination.
@group(0) @binding(3) var<storage, read_write> dst2: array<f32>;
// x in vec4s, for the sums over the leading axis of rows of a multiple of four (the entry
// points ending in 4): from storage (STO = 1) or through an rgba32float copy (TEX = 1, vec4 i
// at texel (i % TEXW, i / TEXW); gpu/texture_operands.rs), the host choosing as for the other
// kernels. On llvmpipe a storage load costs per component and lane, a texel fetch an eighth of
// that per component: the sum of a weight gradient's chunk partials 2.2 -> 0.2 ms.
@group(0) @binding(4) var<storage, read> xv: array<vec4<f32>>;
@group(0) @binding(5) var xt: texture_storage_2d<rgba32float, read>;

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

// Vec4 i of x.
fn x_vec4(i: u32) -> vec4<f32> {
    //#unroll t TEX
    { return textureLoad(xt, vec2<u32>(i % TEXW, i / TEXW)); }
    //#end
    //#unroll t STO
    { return xv[i]; }
    //#end
}

// outer_sum of elements 4q..4q+3 (len a multiple of 4): each component by the same additions,
// rows in order, as outer_sum.
fn outer_sum4(q: u32) -> vec4<f32> {
    let len4 = p.len / 4u;
    var s = vec4<f32>();
    for (var a = 0u; a < p.rows; a++) { s += x_vec4(a * len4 + q); }
    return s * p.scale;
}

// sum_outer, four elements per invocation.
@compute @workgroup_size(64)
fn sum_outer4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let q = flat_id(wid, nwg, li);
    if (q >= p.len / 4u) { return; }
    let s = outer_sum4(q);
    //#unroll c 4
    dst[4u * q + $c] = s[$c];
    //#end
}

// sum_outer_split, four elements per invocation (the split may fall inside them).
@compute @workgroup_size(64)
fn sum_outer_split4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let q = flat_id(wid, nwg, li);
    if (q >= p.len / 4u) { return; }
    let s = outer_sum4(q);
    //#unroll c 4
    {
        let i = 4u * q + $c;
        if (i < p.offset) { dst[i] = s[$c]; } else { dst2[i - p.offset] = s[$c]; }
    }
    //#end
}
