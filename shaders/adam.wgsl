// Adam steps in place (PyTorch semantics: L2 weight decay, bias correction).

// adam_multi steps up to seven tensors in one launch (tensor k is param$k, grad$k, m$k, v$k at
// bindings 1 + 4k.., covering flat indices end(k-1)..end(k); unused slots have empty ranges):
// 28 storage buffers.

struct Params {
    len: u32, lr: f32, weight_decay: f32, beta1: f32,
    beta2: f32, eps: f32, bc1: f32, sqrt_bc2: f32,
    end0u: u32, end1u: u32, end2u: u32, end3u: u32,
    end4u: u32, end5u: u32, end6u: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param0u: array<f32>;
@group(0) @binding(2) var<storage, read> grad0u: array<f32>;
@group(0) @binding(3) var<storage, read_write> m0u: array<f32>;
@group(0) @binding(4) var<storage, read_write> v0u: array<f32>;
@group(0) @binding(5) var<storage, read_write> param1u: array<f32>;
@group(0) @binding(6) var<storage, read> grad1u: array<f32>;
@group(0) @binding(7) var<storage, read_write> m1u: array<f32>;
@group(0) @binding(8) var<storage, read_write> v1u: array<f32>;
@group(0) @binding(9) var<storage, read_write> param2u: array<f32>;
@group(0) @binding(10) var<storage, read> grad2u: array<f32>;
@group(0) @binding(11) var<storage, read_write> m2u: array<f32>;
@group(0) @binding(12) var<storage, read_write> v2u: array<f32>;
@group(0) @binding(13) var<storage, read_write> param3u: array<f32>;
@group(0) @binding(14) var<storage, read> grad3u: array<f32>;
@group(0) @binding(15) var<storage, read_write> m3u: array<f32>;
@group(0) @binding(16) var<storage, read_write> v3u: array<f32>;
@group(0) @binding(17) var<storage, read_write> param4u: array<f32>;
@group(0) @binding(18) var<storage, read> grad4u: array<f32>;
@group(0) @binding(19) var<storage, read_write> m4u: array<f32>;
@group(0) @binding(20) var<storage, read_write> v4u: array<f32>;
@group(0) @binding(21) var<storage, read_write> param5u: array<f32>;
@group(0) @binding(22) var<storage, read> grad5u: array<f32>;
@group(0) @binding(23) var<storage, read_write> m5u: array<f32>;
@group(0) @binding(24) var<storage, read_write> v5u: array<f32>;
@group(0) @binding(25) var<storage, read_write> param6u: array<f32>;
@group(0) @binding(26) var<storage, read> grad6u: array<f32>;
@group(0) @binding(27) var<storage, read_write> m6u: array<f32>;
@group(0) @binding(28) var<storage, read_write> v6u: array<f32>;

// One Adam step of a value: (new value, new first moment, new second moment).
fn adam_update(pv: f32, gv: f32, mv: f32, vv: f32) -> vec3<f32> {
    let g = gv + p.weight_decay * pv;
    let mi = p.beta1 * mv + (1.0 - p.beta1) * g;
    let vi = p.beta2 * vv + (1.0 - p.beta2) * g * g;
    let denom = sqrt(vi) / p.sqrt_bc2 + p.eps;
    return vec3<f32>(pv - p.lr * (mi / p.bc1) / denom, mi, vi);
}

fn idx(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + li;
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    let r = adam_update(param0u[i], grad0u[i], m0u[i], v0u[i]);
    m0u[i] = r.y;
    v0u[i] = r.z;
    param0u[i] = r.x;
}

@compute @workgroup_size(256)
fn adam_multi(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    var start = 0u;
    //#unroll k 7
    if (i >= start && i < p.end$k) {
        let j = i - start;
        let r = adam_update(param$k[j], grad$k[j], m$k[j], v$k[j]);
        m$k[j] = r.y;
        v$k[j] = r.z;
        param$k[j] = r.x;
        return;
    }
    start = p.end$k;
    //#end
}
