// Matrix product C[m, n] = op(A)[m, k] · op(B)[k, n] (+ bias[n]), op = optional transpose.
// Barrier-free register blocking: each invocation owns an RM x RN block of C in registers and
// streams k, loading RM values of A and RN values of B per step (RM * RN multiply-adds).
// No workgroup memory: on software adapters (llvmpipe) barriers are very costly, and this shape
// measured fastest there; on hardware GPUs the caches serve the repeated loads.
//
// The host prepends TA, TB (u32, 1 = transposed), RM, RN (block sizes) and expands the
// `//#unroll` blocks, so the accumulators stay in registers; ACT is the fused epilogue
// (activation_fn.wgsl, prepended to this file; the identity when ACT = 3).

struct Params {
    m: u32, n: u32, k: u32, has_bias: u32,
    nblk: u32, total: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(64)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let t = (wid.y * nwg.x + wid.x) * 64u + li;
    if (t >= p.total) { return; }
    let col0 = (t % p.nblk) * RN;
    let row0 = (t / p.nblk) * RM;
    // Element (i, kk) of op(A) is a[ia[i] + kk * sa]; element (kk, j) of op(B) is b[ib[j] + kk * sb].
    var ia: array<u32, RM>;
    var ib: array<u32, RN>;
    //#unroll i RM
    ia[$i] = select(min(row0 + $i, p.m - 1u) * p.k, min(row0 + $i, p.m - 1u), TA == 1u);
    //#end
    //#unroll j RN
    ib[$j] = select(min(col0 + $j, p.n - 1u), min(col0 + $j, p.n - 1u) * p.k, TB == 1u);
    //#end
    let sa = select(1u, p.m, TA == 1u);
    let sb = select(p.n, 1u, TB == 1u);
    var acc: array<f32, RM * RN>;
    for (var kk = 0u; kk < p.k; kk++) {
        var av: array<f32, RM>;
        var bv: array<f32, RN>;
        //#unroll i RM
        av[$i] = a[ia[$i] + kk * sa];
        //#end
        //#unroll j RN
        bv[$j] = b[ib[$j] + kk * sb];
        //#end
        //#unroll i RM
        //#unroll j RN
        acc[$i * RN + $j] += av[$i] * bv[$j];
        //#end
        //#end
    }
    //#unroll i RM
    if (row0 + $i < p.m) {
        //#unroll j RN
        if (col0 + $j < p.n) {
            var v = acc[$i * RN + $j];
            if (p.has_bias != 0u) { v += bias[col0 + $j]; }
            c[(row0 + $i) * p.n + col0 + $j] = act(v);
        }
        //#end
    }
    //#end
}
