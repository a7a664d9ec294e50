// Dropout with a counter-based mask: element i is kept when
// hash(hash(i ^ key0) + key1) >> 8 >= threshold (Wellons' lowbias32 hash, integer only, so the
// CPU draws the same mask), and kept elements are multiplied by scale = 1 / (1 - p).

struct Params {
    len: u32, key0: u32, key1: u32, threshold: u32,
    scale: f32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn hash32(v: u32) -> u32 {
    var h = v;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + li;
    if (i >= p.len) { return; }
    let bits = hash32(hash32(i ^ p.key0) + p.key1);
    if ((bits >> 8u) >= p.threshold) {
        y[i] = x[i] * p.scale;
    } else {
        y[i] = 0.0;
    }
}
