// Matrix products C[m, n] = op(A)[m, k] · op(B)[k, n] (+ bias[n]), op = optional transpose, one
// or two of them per launch (two independent products: a layer's input and weight gradients).
// Barrier-free register blocking: each invocation owns an RM x RN block of one C in registers and
// streams k, loading RM values of A and RN values of B per step (RM * RN multiply-adds).
// No workgroup memory: on software adapters (llvmpipe) barriers are very costly, and this shape
// measured fastest there; on hardware GPUs the caches serve the repeated loads.
//
// Invocations 0..total0 compute product 0 and total0..total0+total1 product 1 (total1 = 0 for a
// single product, whose buffers are then bound to both slots). The bias and the fused activation
// ACT (activation_fn.wgsl, prepended to this file; the identity when ACT = 3) apply to product 0.
// The transposes are flags in `trans` (bit 0: A0, 1: B0, 2: A1, 3: B1); they only pick index
// strides outside the k loop.
//
// The host prepends RM, RN (block sizes) and expands the `//#unroll` blocks, so the accumulators
// stay in registers.

struct Params {
    m0u: u32, n0u: u32, k0u: u32, nblk0u: u32,
    total0u: u32, has_bias: u32, trans: u32, pad0: u32,
    m1u: u32, n1u: u32, k1u: u32, nblk1u: u32,
    total1u: u32, pad1: u32, pad2: u32, pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a0u: array<f32>;
@group(0) @binding(2) var<storage, read> b0u: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c0u: array<f32>;
@group(0) @binding(5) var<storage, read> a1u: array<f32>;
@group(0) @binding(6) var<storage, read> b1u: array<f32>;
@group(0) @binding(7) var<storage, read_write> c1u: array<f32>;

@compute @workgroup_size(64)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    var t = (wid.y * nwg.x + wid.x) * 64u + li;
    //#unroll q 2
    if (t < p.total$q) {
        let m = p.m$q;
        let n = p.n$q;
        let k = p.k$q;
        let ta = (p.trans >> (2u * $q)) & 1u;
        let tb = (p.trans >> (2u * $q + 1u)) & 1u;
        let col0 = (t % p.nblk$q) * RN;
        let row0 = (t / p.nblk$q) * RM;
        // Element (i, kk) of op(A) is a[ia[i] + kk * sa]; element (kk, j) of op(B) is
        // b[ib[j] + kk * sb].
        var ia: array<u32, RM>;
        var ib: array<u32, RN>;
        //#unroll i RM
        ia[$i] = select(min(row0 + $i, m - 1u) * k, min(row0 + $i, m - 1u), ta == 1u);
        //#end
        //#unroll j RN
        ib[$j] = select(min(col0 + $j, n - 1u), min(col0 + $j, n - 1u) * k, tb == 1u);
        //#end
        let sa = select(1u, m, ta == 1u);
        let sb = select(n, 1u, tb == 1u);
        var acc: array<f32, RM * RN>;
        for (var kk = 0u; kk < k; kk++) {
            var av: array<f32, RM>;
            var bv: array<f32, RN>;
            //#unroll i RM
            av[$i] = a$q[ia[$i] + kk * sa];
            //#end
            //#unroll j RN
            bv[$j] = b$q[ib[$j] + kk * sb];
            //#end
            //#unroll i RM
            //#unroll j RN
            acc[$i * RN + $j] += av[$i] * bv[$j];
            //#end
            //#end
        }
        //#unroll i RM
        if (row0 + $i < m) {
            //#unroll j RN
            if (col0 + $j < n) {
                var v = acc[$i * RN + $j];
                if ($q == 0u) {
                    if (p.has_bias != 0u) { v += bias[col0 + $j]; }
                    v = act(v);
                }
                c$q[(row0 + $i) * n + col0 + $j] = v;
            }
            //#end
        }
        //#end
        return;
    }
    t -= p.total$q;
    //#end
}
