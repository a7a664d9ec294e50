// Adaptive average pooling (PyTorch's window rule): output i along an axis of length L averages
// [floor(i * L / O), ceil((i + 1) * L / O)). Forward: one invocation per output element.
// Backward: one invocation per input element, gathering from the outputs whose windows contain
// it, [floor(i * O / L), ceil((i + 1) * O / L)); no atomics.
//
// The host prepends the specialisation constants (u32): IH, IW input and OH, OW output plane sizes.

struct Params { total: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

fn ceil_div(a: u32, b: u32) -> u32 {
    return (a + b - 1u) / b;
}

fn window_count(oy: u32, ox: u32) -> f32 {
    let h = ceil_div((oy + 1u) * IH, OH) - oy * IH / OH;
    let w = ceil_div((ox + 1u) * IW, OW) - ox * IW / OW;
    return f32(h * w);
}

// src = x, dst = y.
@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let ox = t % OW;
    let oy = (t / OW) % OH;
    let base = (t / (OW * OH)) * IH * IW;
    var s = 0.0;
    for (var iy = oy * IH / OH; iy < ceil_div((oy + 1u) * IH, OH); iy++) {
        for (var ix = ox * IW / OW; ix < ceil_div((ox + 1u) * IW, OW); ix++) {
            s += src[base + iy * IW + ix];
        }
    }
    dst[t] = s / window_count(oy, ox);
}

// src = grad_y, dst = grad_x.
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) { return; }
    let ix = t % IW;
    let iy = (t / IW) % IH;
    let base = (t / (IW * IH)) * OH * OW;
    var s = 0.0;
    for (var oy = iy * OH / IH; oy < ceil_div((iy + 1u) * OH, IH); oy++) {
        for (var ox = ix * OW / IW; ox < ceil_div((ix + 1u) * OW, IW); ox++) {
            s += src[base + oy * OW + ox] / window_count(oy, ox);
        }
    }
    dst[t] = s;
}
