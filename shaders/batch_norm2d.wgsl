// 2-D batch normalisation, forward and backward, over x[n, c, hw] (PyTorch semantics).
//
// - stats: one workgroup per channel. Training: mean, then the biased variance from squared
//   deviations (two passes: nearly constant channels stay exact), the running statistics
//   updated with the unbiased variance; eval: the running statistics. Writes mean, invstd and
//   scale = weight * invstd.
// - normalize: y = act((x - mean) * scale + bias), one invocation per element; act the fused
//   activation (activation_fn.wgsl, prepended by the host; the identity when ACT = 3).
//   With RESIDUAL = 1 it adds a residual before the activation: y = act(... + residual).
// - backward_sums: one workgroup per channel: grad_bias = Σ grad_y, grad_weight = Σ grad_y * x̂,
//   and the input-gradient coefficients coef = [a; b; k] (a = w * invstd; training:
//   b = -a * invstd * grad_weight / m, k = -a * grad_bias / m; eval: b = k = 0).
// - backward_input: grad_x = a * grad_y + b * (x - mean) + k, one invocation per element.
// Sums are tree reductions in workgroup memory in a fixed order: deterministic, no atomics.
//
// The host prepends the specialisation constants (u32): C channels, HW plane size, TRAINING (0/1),
// ACT the fused activation, RESIDUAL (0/1: normalize reads the residual, binding 14).

struct Params {
    total: u32, m: u32, eps: f32, momentum: f32,
    unbias: f32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> rmean: array<f32>;
@group(0) @binding(4) var<storage, read_write> rvar: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> scale: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;
@group(0) @binding(10) var<storage, read> gy: array<f32>;
@group(0) @binding(11) var<storage, read_write> gbias: array<f32>;
@group(0) @binding(12) var<storage, read_write> gweight: array<f32>;
@group(0) @binding(13) var<storage, read_write> coef: array<f32>;
@group(0) @binding(14) var<storage, read> residual: array<f32>;

var<workgroup> part: array<f32, 64>;

// The workgroup's sum of one value per invocation (fixed tree order).
fn workgroup_sum(li: u32, v: f32) -> f32 {
    part[li] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s >> 1u) {
        if (li < s) { part[li] += part[li + s]; }
        workgroupBarrier();
    }
    let r = part[0];
    workgroupBarrier();
    return r;
}

// Flat index of the j-th value (j < n * HW) of channel ch.
fn at(ch: u32, j: u32) -> u32 {
    return ((j / HW) * C + ch) * HW + j % HW;
}

@compute @workgroup_size(64)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let ch = wid.y * nwg.x + wid.x;
    if (ch >= C) { return; }
    var mu = 0.0;
    var var_ = 0.0;
    if (TRAINING == 1u) {
        var s = 0.0;
        for (var j = li; j < p.m; j += 64u) { s += x[at(ch, j)]; }
        mu = workgroup_sum(li, s) / f32(p.m);
        var q = 0.0;
        for (var j = li; j < p.m; j += 64u) {
            let d = x[at(ch, j)] - mu;
            q += d * d;
        }
        var_ = workgroup_sum(li, q) / f32(p.m);
    } else {
        mu = rmean[ch];
        var_ = rvar[ch];
    }
    if (li == 0u) {
        let is = 1.0 / sqrt(var_ + p.eps);
        mean[ch] = mu;
        invstd[ch] = is;
        scale[ch] = weight[ch] * is;
        if (TRAINING == 1u) {
            rmean[ch] = (1.0 - p.momentum) * rmean[ch] + p.momentum * mu;
            rvar[ch] = (1.0 - p.momentum) * rvar[ch] + p.momentum * var_ * p.unbias;
        }
    }
}

@compute @workgroup_size(256)
fn normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + li;
    if (i >= p.total) { return; }
    let ch = (i / HW) % C;
    var v = (x[i] - mean[ch]) * scale[ch] + bias[ch];
    //#unroll r RESIDUAL
    v += residual[i];
    //#end
    out[i] = act(v);
}

@compute @workgroup_size(64)
fn backward_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let ch = wid.y * nwg.x + wid.x;
    if (ch >= C) { return; }
    let mu = mean[ch];
    var s = 0.0;
    var sx = 0.0;
    for (var j = li; j < p.m; j += 64u) {
        let k = at(ch, j);
        s += gy[k];
        sx += gy[k] * (x[k] - mu);
    }
    let sg = workgroup_sum(li, s);
    let sgx = workgroup_sum(li, sx) * invstd[ch];
    if (li == 0u) {
        gbias[ch] = sg;
        gweight[ch] = sgx;
        let a = weight[ch] * invstd[ch];
        coef[ch] = a;
        coef[C + ch] = 0.0;
        coef[2u * C + ch] = 0.0;
        if (TRAINING == 1u) {
            coef[C + ch] = -a * invstd[ch] * sgx / f32(p.m);
            coef[2u * C + ch] = -a * sg / f32(p.m);
        }
    }
}

@compute @workgroup_size(256)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + li;
    if (i >= p.total) { return; }
    let ch = (i / HW) % C;
    out[i] = coef[ch] * gy[i] + coef[C + ch] * (x[i] - mean[ch]) + coef[2u * C + ch];
}
