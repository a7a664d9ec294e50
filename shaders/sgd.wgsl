// SGD steps in place (PyTorch semantics: dampening 0, optional Nesterov momentum, L2 weight decay).

// The *_multi entries step up to four tensors in one launch (tensor k is param$k, grad$k, m$k,
// covering flat indices end(k-1)..end(k); unused slots have empty ranges).

struct Params {
    len: u32, nesterov: u32, pad0: u32, pad1: u32,
    lr: f32, momentum: f32, weight_decay: f32, beta1: f32,
    beta2: f32, eps: f32, bc1: f32, sqrt_bc2: f32,
    end0u: u32, end1u: u32, end2u: u32, end3u: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param0u: array<f32>;
@group(0) @binding(2) var<storage, read> grad0u: array<f32>;
@group(0) @binding(3) var<storage, read_write> m0u: array<f32>;
@group(0) @binding(4) var<storage, read_write> param1u: array<f32>;
@group(0) @binding(5) var<storage, read> grad1u: array<f32>;
@group(0) @binding(6) var<storage, read_write> m1u: array<f32>;
@group(0) @binding(7) var<storage, read_write> param2u: array<f32>;
@group(0) @binding(8) var<storage, read> grad2u: array<f32>;
@group(0) @binding(9) var<storage, read_write> m2u: array<f32>;
@group(0) @binding(10) var<storage, read_write> param3u: array<f32>;
@group(0) @binding(11) var<storage, read> grad3u: array<f32>;
@group(0) @binding(12) var<storage, read_write> m3u: array<f32>;

// One plain step of a value.
fn plain_update(pv: f32, gv: f32) -> f32 {
    return pv - p.lr * (gv + p.weight_decay * pv);
}

// One momentum step of a value: (new value, new momentum buffer).
fn momentum_update(pv: f32, gv: f32, mv: f32) -> vec2<f32> {
    var d = gv + p.weight_decay * pv;
    let buf = p.momentum * mv + d;
    d = select(buf, d + p.momentum * buf, p.nesterov != 0u);
    return vec2<f32>(pv - p.lr * d, buf);
}

fn idx(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + li;
}

@compute @workgroup_size(256)
fn sgd_plain(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    param0u[i] = plain_update(param0u[i], grad0u[i]);
}

// m0u is the momentum buffer.
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    if (i >= p.len) { return; }
    let r = momentum_update(param0u[i], grad0u[i], m0u[i]);
    param0u[i] = r.x;
    m0u[i] = r.y;
}

@compute @workgroup_size(256)
fn sgd_plain_multi(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    var start = 0u;
    //#unroll k 4
    if (i >= start && i < p.end$k) {
        let j = i - start;
        param$k[j] = plain_update(param$k[j], grad$k[j]);
        return;
    }
    start = p.end$k;
    //#end
}

@compute @workgroup_size(256)
fn sgd_momentum_multi(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    var start = 0u;
    //#unroll k 4
    if (i >= start && i < p.end$k) {
        let j = i - start;
        let r = momentum_update(param$k[j], grad$k[j], m$k[j]);
        param$k[j] = r.x;
        m$k[j] = r.y;
        return;
    }
    start = p.end$k;
    //#end
}
