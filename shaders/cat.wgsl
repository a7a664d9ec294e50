// Concatenation as a strided row copy: dst[r * dst_stride + dst_off + j] =
// src[r * src_stride + src_off + j] for r < total / len, j < len. Forward copies each input
// into its place in the output's rows; backward copies the rows' slices back out.

struct Params {
    total: u32, len: u32, src_stride: u32, src_off: u32,
    dst_stride: u32, dst_off: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn copy_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let t = (wid.y * nwg.x + wid.x) * 256u + li;
    if (t >= p.total) { return; }
    let r = t / p.len;
    let j = t % p.len;
    dst[r * p.dst_stride + p.dst_off + j] = src[r * p.src_stride + p.src_off + j];
}
