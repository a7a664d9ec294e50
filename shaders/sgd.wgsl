// SGD steps in place (PyTorch semantics: dampening 0, optional Nesterov momentum, L2 weight decay).

// The *_multi entries step up to ten tensors in one launch (tensor k is param$k, grad$k, m$k
// at bindings 1 + 3k.., covering flat indices end(k-1)..end(k); unused slots have empty
// ranges): 20 storage buffers without momentum, 30 with it.
//
// The host prepends the element type E: f32, or vec4<f32> for the multi entries when every
// buffer binds whole vec4s (indices and ends then count vec4s, each tensor's last one running
// into its buffer's unused tail). Each lane gets the same operations either way; on llvmpipe a
// storage access costs per lane, about as much for a vec4 as for one f32.

struct Params {
    len: u32, nesterov: u32, lr: f32, momentum: f32,
    weight_decay: f32, end0u: u32, end1u: u32, end2u: u32,
    end3u: u32, end4u: u32, end5u: u32, end6u: u32,
    end7u: u32, end8u: u32, end9u: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param0u: array<E>;
@group(0) @binding(2) var<storage, read> grad0u: array<E>;
@group(0) @binding(3) var<storage, read_write> m0u: array<E>;
@group(0) @binding(4) var<storage, read_write> param1u: array<E>;
@group(0) @binding(5) var<storage, read> grad1u: array<E>;
@group(0) @binding(6) var<storage, read_write> m1u: array<E>;
@group(0) @binding(7) var<storage, read_write> param2u: array<E>;
@group(0) @binding(8) var<storage, read> grad2u: array<E>;
@group(0) @binding(9) var<storage, read_write> m2u: array<E>;
@group(0) @binding(10) var<storage, read_write> param3u: array<E>;
@group(0) @binding(11) var<storage, read> grad3u: array<E>;
@group(0) @binding(12) var<storage, read_write> m3u: array<E>;
@group(0) @binding(13) var<storage, read_write> param4u: array<E>;
@group(0) @binding(14) var<storage, read> grad4u: array<E>;
@group(0) @binding(15) var<storage, read_write> m4u: array<E>;
@group(0) @binding(16) var<storage, read_write> param5u: array<E>;
@group(0) @binding(17) var<storage, read> grad5u: array<E>;
@group(0) @binding(18) var<storage, read_write> m5u: array<E>;
@group(0) @binding(19) var<storage, read_write> param6u: array<E>;
@group(0) @binding(20) var<storage, read> grad6u: array<E>;
@group(0) @binding(21) var<storage, read_write> m6u: array<E>;
@group(0) @binding(22) var<storage, read_write> param7u: array<E>;
@group(0) @binding(23) var<storage, read> grad7u: array<E>;
@group(0) @binding(24) var<storage, read_write> m7u: array<E>;
@group(0) @binding(25) var<storage, read_write> param8u: array<E>;
@group(0) @binding(26) var<storage, read> grad8u: array<E>;
@group(0) @binding(27) var<storage, read_write> m8u: array<E>;
@group(0) @binding(28) var<storage, read_write> param9u: array<E>;
@group(0) @binding(29) var<storage, read> grad9u: array<E>;
@group(0) @binding(30) var<storage, read_write> m9u: array<E>;

// One plain step of a value.
fn plain_update(pv: E, gv: E) -> E {
    return pv - p.lr * (gv + p.weight_decay * pv);
}

// A momentum step's new value and new momentum buffer.
struct MomentumStep { value: E, buf: E }

// One momentum step of a value.
fn momentum_update(pv: E, gv: E, mv: E) -> MomentumStep {
    var d = gv + p.weight_decay * pv;
    let buf = p.momentum * mv + d;
    d = select(buf, d + p.momentum * buf, p.nesterov != 0u);
    return MomentumStep(pv - p.lr * d, buf);
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
    param0u[i] = r.value;
    m0u[i] = r.buf;
}

@compute @workgroup_size(256)
fn sgd_plain_multi(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let i = idx(wid, nwg, li);
    var start = 0u;
    //#unroll k 10
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
    //#unroll k 10
    if (i >= start && i < p.end$k) {
        let j = i - start;
        let r = momentum_update(param$k[j], grad$k[j], m$k[j]);
        param$k[j] = r.value;
        m$k[j] = r.buf;
        return;
    }
    start = p.end$k;
    //#end
}
