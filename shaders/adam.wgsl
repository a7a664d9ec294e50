// Adam steps in place (PyTorch semantics: L2 weight decay, bias correction).

struct Params {
    len: u32, nesterov: u32, pad0: u32, pad1: u32,
    lr: f32, momentum: f32, weight_decay: f32, beta1: f32,
    beta2: f32, eps: f32, bc1: f32, sqrt_bc2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

fn idx(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + li;
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    let g = grad[i] + p.weight_decay * param[i];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let denom = sqrt(vi) / p.sqrt_bc2 + p.eps;
    param[i] -= p.lr * (mi / p.bc1) / denom;
}
