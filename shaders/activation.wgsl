// Element-wise activations and their gradients (taken from the forward output y).
// The host prepends ACT (u32): 0 = sigmoid, 1 = relu, 2 = tanh.

struct Params { len: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn act(v: f32) -> f32 {
    if (ACT == 0u) {
        // Stable for any finite v: exp of a non-positive number only.
        let e = exp(-abs(v));
        return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
    } else if (ACT == 1u) {
        return max(v, 0.0);
    }
    // tanh saturates to ±1 in f32 beyond |v| = 10; clamping keeps exp-based lowerings finite.
    return tanh(clamp(v, -15.0, 15.0));
}

fn dact(yv: f32) -> f32 {
    if (ACT == 0u) {
        return yv * (1.0 - yv);
    } else if (ACT == 1u) {
        return select(0.0, 1.0, yv > 0.0);
    }
    return 1.0 - yv * yv;
}

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
    dst[i] = g[i] * dact(x[i]);
}
