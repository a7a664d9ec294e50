// Pooling: max (with arg-max offsets) and average (padding counted, PyTorch's
// count_include_pad=True), forward and backward. Backward is a gather: each input element sums
// the gradients of the windows that cover it, in window order; no atomics.
//
// The host prepends the specialisation constants (u32): KH, KW window, SH, SW stride, PH, PW padding,
// IH, IW input and OH, OW output plane sizes (constant divisors are cheap multiplies), and ACT,
// the activation whose output the pooling read (activation_fn.wgsl, prepended to this file):
// backward then multiplies each input's gradient by its derivative, taken from that output
// (binding 7), in the same pass (the identity, ACT = 3, for plain pooling backward).
// TEX, STO and TEXW say whether pool_fwd_rows and pool_bwd_rows read x, act_y and grad_y through
// textures (below).

// Non-overlapping windows without padding (LeNet's 2x2/2): each input has at most one window.
const TILED: bool = SH == KH && SW == KW && PH == 0u && PW == 0u;

struct Params {
    planes: u32, h: u32, w: u32, oh: u32,
    ow: u32, total: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// Forward bindings: 1 = x, 2 = y, 3 = argmax (max only).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> amax: array<u32>;

// Backward bindings: 4 = grad_y, 5 = argmax (max only), 6 = grad_x.
@group(0) @binding(4) var<storage, read> gy: array<f32>;
@group(0) @binding(5) var<storage, read> amax_in: array<u32>;
@group(0) @binding(6) var<storage, read_write> gx: array<f32>;
// The activation's output (backward with ACT != 3; bound to grad_y otherwise and not read).
@group(0) @binding(7) var<storage, read> act_y: array<f32>;

// The same tensors as gx and act_y, in vec4s (the *4 kernels below) and vec2s (pool_bwd_rows
// with VW = 2).
@group(0) @binding(8) var<storage, read_write> gx4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> act_y4: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> gx2: array<vec2<f32>>;
@group(0) @binding(12) var<storage, read> act_y2: array<vec2<f32>>;
// The forward's x, in vec4s and vec2s (pool_fwd_rows).
@group(0) @binding(10) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read> x2: array<vec2<f32>>;
// Or through textures (TEX = 1, STO = 0; gpu/texture_operands.rs): vec4 i of x, act_y and
// grad_y is texel (i % TEXW, i / TEXW) of x4t, act_yt and gyt, a fetch far cheaper than a
// storage load on llvmpipe.
@group(0) @binding(13) var x4t: texture_storage_2d<rgba32float, read>;
@group(0) @binding(14) var act_yt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(15) var gyt: texture_storage_2d<rgba32float, read>;

fn texel(i: u32) -> vec2<u32> {
    return vec2<u32>(i % TEXW, i / TEXW);
}

// Vec4 i of the forward's x.
fn x_vec4(i: u32) -> vec4<f32> {
    //#unroll t TEX
    { return textureLoad(x4t, texel(i)); }
    //#end
    //#unroll t STO
    { return x4[i]; }
    //#end
}

// Vec2 i of the forward's x.
fn x_vec2(i: u32) -> vec2<f32> {
    //#unroll t TEX
    {
        let v = textureLoad(x4t, texel(i / 2u));
        return select(v.xy, v.zw, (i & 1u) == 1u);
    }
    //#end
    //#unroll t STO
    { return x2[i]; }
    //#end
}

// Vector i of VW elements of the forward's x, in a vec4 (zeros past VW).
fn x_row_vector(i: u32) -> vec4<f32> {
    //#unroll v V4
    { return x_vec4(i); }
    //#end
    //#unroll v V2
    { return vec4<f32>(x_vec2(i), 0.0, 0.0); }
    //#end
}

// Vec4 i of the activation's output.
fn act_y_vec4(i: u32) -> vec4<f32> {
    //#unroll t TEX
    { return textureLoad(act_yt, texel(i)); }
    //#end
    //#unroll t STO
    { return act_y4[i]; }
    //#end
}

// Vec2 i of the activation's output.
fn act_y_vec2(i: u32) -> vec2<f32> {
    //#unroll t TEX
    {
        let v = textureLoad(act_yt, texel(i / 2u));
        return select(v.xy, v.zw, (i & 1u) == 1u);
    }
    //#end
    //#unroll t STO
    { return act_y2[i]; }
    //#end
}

// Element o of grad_y.
fn grad_out(o: u32) -> f32 {
    //#unroll t TEX
    { return textureLoad(gyt, texel(o / 4u))[o % 4u]; }
    //#end
    //#unroll t STO
    { return gy[o]; }
    //#end
}

// Stores input element t's gradient g, through the activation's derivative when ACT != 3:
// the same product activation.wgsl's act_bwd makes after a plain pooling backward.
fn store_grad(t: u32, g: f32) {
    if (ACT == 3u) {
        gx[t] = g;
    } else {
        gx[t] = g * dact(act_y[t]);
    }
}

@compute @workgroup_size(64)
fn max_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let ox = t % OW;
    let oy = (t / OW) % OH;
    let plane = t / (OW * OH);
    let base = plane * IH * IW;
    var best = 0u;
    var bv = 0.0;
    var found = false;
    for (var ky = 0u; ky < KH; ky++) {
        let iy = i32(oy * SH + ky) - i32(PH);
        if (iy < 0 || iy >= i32(IH)) { continue; }
        for (var kx = 0u; kx < KW; kx++) {
            let ix = i32(ox * SW + kx) - i32(PW);
            if (ix < 0 || ix >= i32(IW)) { continue; }
            let off = u32(iy) * IW + u32(ix);
            let v = x[base + off];
            // First maximum in scan order wins; NaN propagates.
            if (!found || v > bv || (v != v && bv == bv)) {
                best = off;
                bv = v;
                found = true;
            }
        }
    }
    y[t] = bv;
    amax[t] = best;
}

@compute @workgroup_size(64)
fn avg_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let ox = t % OW;
    let oy = (t / OW) % OH;
    let plane = t / (OW * OH);
    let base = plane * IH * IW;
    var s = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        let iy = i32(oy * SH + ky) - i32(PH);
        if (iy < 0 || iy >= i32(IH)) { continue; }
        for (var kx = 0u; kx < KW; kx++) {
            let ix = i32(ox * SW + kx) - i32(PW);
            if (ix < 0 || ix >= i32(IW)) { continue; }
            s += x[base + u32(iy) * IW + u32(ix)];
        }
    }
    y[t] = s / f32(KH * KW);
}

// Output rows (or columns) whose window covers input coordinate i: [lo, hi).
fn cover(i: u32, k: u32, s: u32, pad: u32, n_out: u32) -> vec2<u32> {
    let a = i32(i + pad) - i32(k) + 1;
    var lo = 0u;
    if (a > 0) { lo = (u32(a) + s - 1u) / s; }
    let hi = min((i + pad) / s + 1u, n_out);
    return vec2<u32>(lo, hi);
}

@compute @workgroup_size(64)
fn max_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let ix = t % IW;
    let iy = (t / IW) % IH;
    let plane = t / (IW * IH);
    let off = iy * IW + ix;
    if (TILED) {
        let oy = iy / KH;
        let ox = ix / KW;
        var g = 0.0;
        if (oy < OH && ox < OW) {
            let o = (plane * OH + oy) * OW + ox;
            g = select(0.0, gy[o], amax_in[o] == off);
        }
        store_grad(t, g);
        return;
    }
    let ry = cover(iy, KH, SH, PH, OH);
    let rx = cover(ix, KW, SW, PW, OW);
    var s = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        for (var ox = rx.x; ox < rx.y; ox++) {
            let o = (plane * OH + oy) * OW + ox;
            if (amax_in[o] == off) { s += gy[o]; }
        }
    }
    store_grad(t, s);
}

@compute @workgroup_size(64)
fn avg_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let ix = t % IW;
    let iy = (t / IW) % IH;
    let plane = t / (IW * IH);
    let win = f32(KH * KW);
    if (TILED) {
        let oy = iy / KH;
        let ox = ix / KW;
        var g = 0.0;
        if (oy < OH && ox < OW) { g = gy[(plane * OH + oy) * OW + ox] / win; }
        store_grad(t, g);
        return;
    }
    let ry = cover(iy, KH, SH, PH, OH);
    let rx = cover(ix, KW, SW, PW, OW);
    var s = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        for (var ox = rx.x; ox < rx.y; ox++) {
            s += gy[(plane * OH + oy) * OW + ox] / win;
        }
    }
    store_grad(t, s);
}

// avg_bwd and max_bwd for non-overlapping windows (TILED) over rows whose width is a multiple
// of VW (4 or 2) and windows whose width divides VW: VW inputs of a row per invocation, read
// and written as one vec4 (V4 = 1) or vec2 (V2 = 1), and the NWIN = VW / KW windows they fall
// in read once each (on SIMD adapters such as llvmpipe a storage access costs per lane, about
// the same for a vector as for one f32). MAXP = 1 for max pooling (amax_in bound), 0 for
// average. p.total counts vectors here. Each element gets what the one-element kernels give
// it, by the same operations.
@compute @workgroup_size(64)
fn pool_bwd_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let e = t * VW;
    let ix = e % IW;
    let iy = (e / IW) % IH;
    let plane = e / (IW * IH);
    let oy = iy / KH;
    let ox0 = ix / KW;
    let win = f32(KH * KW);
    var gw: array<f32, NWIN>;
    var aw: array<u32, NWIN>;
    //#unroll w NWIN
    {
        let ok = oy < OH && ox0 + $w < OW;
        let o = (plane * OH + select(0u, oy, ok)) * OW + select(0u, ox0 + $w, ok);
        if (MAXP == 1u) {
            gw[$w] = select(0.0, grad_out(o), ok);
            // No input offset is 0xffffffff: a window outside the output matches nothing.
            aw[$w] = select(0xffffffffu, amax_in[o], ok);
        } else {
            gw[$w] = select(0.0, grad_out(o) / win, ok);
        }
    }
    //#end
    // The window of element j; min: NWIN is 1 in the specialisations that do not run this.
    var g: array<f32, VW>;
    //#unroll j VW
    {
        let w = min($j / KW, NWIN - 1u);
        if (MAXP == 1u) {
            g[$j] = select(0.0, gw[w], aw[w] == iy * IW + ix + $j);
        } else {
            g[$j] = gw[w];
        }
    }
    //#end
    //#unroll v V4
    {
        let gv = vec4<f32>(g[0], g[1], g[2], g[3]);
        if (ACT == 3u) {
            gx4[t] = gv;
        } else {
            let y = act_y_vec4(t);
            gx4[t] = gv * vec4<f32>(dact(y.x), dact(y.y), dact(y.z), dact(y.w));
        }
    }
    //#end
    //#unroll v V2
    {
        let gv = vec2<f32>(g[0], g[1]);
        if (ACT == 3u) {
            gx2[t] = gv;
        } else {
            let y = act_y_vec2(t);
            gx2[t] = gv * vec2<f32>(dact(y.x), dact(y.y));
        }
    }
    //#end
}

// avg_fwd and max_fwd under the conditions of pool_bwd_rows: one invocation per VW (4 or 2)
// input columns of an output row, reading the KH input rows' vectors once and writing the
// NWIN windows they hold, each by the same operations in the same order as the one-output
// kernels. p.total counts (plane, output row, group of VW columns) here.
@compute @workgroup_size(64)
fn pool_fwd_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let groups = max(IW / VW, 1u);
    let g4 = t % groups;
    let oy = (t / groups) % OH;
    let plane = t / (groups * OH);
    var rows: array<vec4<f32>, KH>;
    //#unroll ky KH
    rows[$ky] = x_row_vector(((plane * IH + oy * KH + $ky) * IW) / VW + g4);
    //#end
    //#unroll w NWIN
    {
        let ox = g4 * NWIN + $w;
        if (ox < OW) {
            let o = (plane * OH + oy) * OW + ox;
            var s = 0.0;
            var best = 0u;
            var bv = 0.0;
            var found = false;
            //#unroll ky KH
            //#unroll kx KW
            {
                let v = rows[$ky][min($w * KW + $kx, 3u)];
                if (MAXP == 1u) {
                    // First maximum in scan order wins; NaN propagates.
                    if (!found || v > bv || (v != v && bv == bv)) {
                        best = (oy * KH + $ky) * IW + ox * KW + $kx;
                        bv = v;
                        found = true;
                    }
                } else {
                    s += v;
                }
            }
            //#end
            //#end
            if (MAXP == 1u) {
                y[o] = bv;
                amax[o] = best;
            } else {
                y[o] = s / f32(KH * KW);
            }
        }
    }
    //#end
}
