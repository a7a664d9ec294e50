// Element-wise arithmetic: a + alpha * b, in-place accumulation, scaling, scaling by a device
// scalar, fill.

struct Params { len: u32, alpha: f32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn idx(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + li;
}

// dst = a + alpha * b (bindings 1, 2, 3).
@compute @workgroup_size(256)
fn axpby(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    dst[i] = a[i] + p.alpha * b[i];
}

// dst += alpha * a (bindings 1, 3).
@compute @workgroup_size(256)
fn axpy_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    dst[i] += p.alpha * a[i];
}

// dst = alpha * a (bindings 1, 3).
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    dst[i] = p.alpha * a[i];
}

// dst = a * b[0] (bindings 1, 2, 3).
@compute @workgroup_size(256)
fn scale_by(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    dst[i] = a[i] * b[0];
}

// dst = alpha (binding 3).
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    dst[i] = p.alpha;
}
