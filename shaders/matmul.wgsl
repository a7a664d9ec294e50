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
//
// Two ways to stream k, chosen by the host per launch:
// - scalar (S1 = 1, V4 = 0): one f32 per load; the transposes are flags in `trans` (bit 0: A0,
//   1: B0, 2: A1, 3: B1) that only pick index strides outside the k loop;
// - whole vec4s (V4 = 1, S1 = 0): when every product's k is a multiple of 4, and so are m where
//   A is stored transposed ([k, m]) and n where B is not ([k, n]), each load is a vec4 along the
//   stored rows: four k steps of one row of op(A) (A as stored) or of one column of op(B)
//   (B transposed), else four rows of op(A) or columns of op(B) at one k step. The transposes
//   are then the constant TRANS (the bits of `trans`), so each load's shape is fixed.
//   llvmpipe makes every storage access lane by lane, a vec4 costing about one f32, so this
//   loads a quarter as often; the multiply-adds are the same, in the same order.
//
// The vec4 loads come from storage buffers (STO = 1) or, when the context reads operands through
// textures (TEX = 1, gpu/texture_operands.rs), from read-only rgba32float storage-texture copies
// of them, vec4 i at texel (i % TEXW, i / TEXW): on llvmpipe a texel load can cost a fraction
// of a storage-buffer load.
//
// Invocation t of a product owns row block t % mblk and column block t / mblk: neighbouring
// invocations share the columns. mblk is the row blocks rounded up to whole subgroups when the
// vec4 path shares B's loads across one (SGON = 1, SGW lanes, SGOFF = 0): each lane then loads
// SGR of the RN texels of B a k step needs and takes the others from the lanes that loaded them
// by subgroupBroadcast (on llvmpipe a texel load is made lane by lane, a broadcast is one
// shuffle). Lanes of the rounding compute clamped rows and store nothing. Otherwise SGW = SGR =
// SGON = 0 and SGOFF = 1.
//
// The host prepends RM, RN (block sizes), RM4 = RM / 4, RN4 = RN / 4, V4, S1, TRANS, TEX, STO,
// TEXW, PRODUCTS (1 or 2) and the subgroup constants above, and expands the `//#unroll` blocks,
// so the accumulators stay in registers.

struct Params {
    m0u: u32, n0u: u32, k0u: u32, nblk0u: u32,
    total0u: u32, has_bias: u32, trans: u32, mblk0u: u32,
    m1u: u32, n1u: u32, k1u: u32, nblk1u: u32,
    total1u: u32, mblk1u: u32, pad2: u32, pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a0u: array<f32>;
@group(0) @binding(2) var<storage, read> b0u: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c0u: array<f32>;
@group(0) @binding(5) var<storage, read> a1u: array<f32>;
@group(0) @binding(6) var<storage, read> b1u: array<f32>;
@group(0) @binding(7) var<storage, read_write> c1u: array<f32>;
// The same operands in vec4s (V4 = 1; bound instead of 1, 2, 5, 6).
@group(0) @binding(8) var<storage, read> a0uv: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> b0uv: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> a1uv: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> b1uv: array<vec4<f32>>;
// Or through textures (V4 = 1 and TEX = 1, STO = 0; gpu/texture_operands.rs): vec4 i is texel
// (i % TEXW, i / TEXW), a fetch far cheaper than a storage load on llvmpipe.
@group(0) @binding(12) var a0ut: texture_storage_2d<rgba32float, read>;
@group(0) @binding(13) var b0ut: texture_storage_2d<rgba32float, read>;
@group(0) @binding(14) var a1ut: texture_storage_2d<rgba32float, read>;
@group(0) @binding(15) var b1ut: texture_storage_2d<rgba32float, read>;

// Each product is its own function (inlined by every compiler), and a single-product launch
// (PRODUCTS = 1) has only the first: the WGSL front end's time grows with the square of a
// function's expression count, and every specialisation is parsed afresh.
//#unroll q PRODUCTS
// Vec4 i of A and of B, from storage or from their textures.
fn a_vec4$q(i: u32) -> vec4<f32> {
    //#unroll t TEX
    { return textureLoad(a$qt, vec2<u32>(i % TEXW, i / TEXW)); }
    //#end
    //#unroll t STO
    { return a$qv[i]; }
    //#end
}

fn b_vec4$q(i: u32) -> vec4<f32> {
    //#unroll t TEX
    { return textureLoad(b$qt, vec2<u32>(i % TEXW, i / TEXW)); }
    //#end
    //#unroll t STO
    { return b$qv[i]; }
    //#end
}

// Texel u (0..RN) of the B texels step k4 reads for the columns from col0: column u's four k
// steps (B transposed), else the four columns 4j.. of k step 4 k4 + r (u = r RN4 + j).
fn b_texel$q(u: u32, k4: u32, col0: u32) -> vec4<f32> {
    let n = p.n$q;
    if (((TRANS >> (2u * $q + 1u)) & 1u) == 1u) {
        return b_vec4$q(min(col0 + u, n - 1u) * p.k$q / 4u + k4);
    }
    let r = u / RN4;
    let j = u % RN4;
    return b_vec4$q((4u * k4 + r) * (n / 4u) + min(col0 + 4u * j, n - 4u) / 4u);
}

fn product$q(t: u32, lane: u32) {
    let m = p.m$q;
    let n = p.n$q;
    let k = p.k$q;
    let row0 = (t % p.mblk$q) * RM;
    let col0 = (t / p.mblk$q) * RN;
    var acc: array<f32, RM * RN>;
    //#unroll s S1
    {
        let ta = (p.trans >> (2u * $q)) & 1u;
        let tb = (p.trans >> (2u * $q + 1u)) & 1u;
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
    }
    //#end
    //#unroll v V4
    {
        // av[4i + r] = op(A)[row0 + i, 4k4 + r], bv[4j + r] = op(B)[4k4 + r, col0 + j].
        // Rows and columns past the edge read the last whole vec4 (never stored). ia[i]: the
        // vec4 where row i of A starts (A as stored), or, for i < RM4, the vec4 of rows
        // 4i..4i+3 within a stored row of A (A transposed); ib likewise for B's columns.
        let ta = (TRANS >> (2u * $q)) & 1u;
        let tb = (TRANS >> (2u * $q + 1u)) & 1u;
        var ia: array<u32, RM>;
        //#unroll i RM
        ia[$i] = select(min(row0 + $i, m - 1u) * k / 4u, min(row0 + 4u * $i, m - 4u) / 4u,
                        ta == 1u);
        //#end
        for (var k4 = 0u; k4 < k / 4u; k4++) {
            var av: array<f32, RM * 4u>;
            var bv: array<f32, RN * 4u>;
            if (ta == 0u) {
                //#unroll i RM
                let va$i = a_vec4$q(ia[$i] + k4);
                av[4u * $i] = va$i.x; av[4u * $i + 1u] = va$i.y;
                av[4u * $i + 2u] = va$i.z; av[4u * $i + 3u] = va$i.w;
                //#end
            } else {
                //#unroll r 4
                //#unroll i RM4
                let va$r$i = a_vec4$q((4u * k4 + $r) * (m / 4u) + ia[$i]);
                av[16u * $i + $r] = va$r$i.x; av[16u * $i + 4u + $r] = va$r$i.y;
                av[16u * $i + 8u + $r] = va$r$i.z; av[16u * $i + 12u + $r] = va$r$i.w;
                //#end
                //#end
            }
            var bt: array<vec4<f32>, RN>;
            //#unroll s SGOFF
            //#unroll u RN
            bt[$u] = b_texel$q($u, k4, col0);
            //#end
            //#end
            //#unroll s SGON
            {
                // Lanes past the last texel load it again.
                var own: array<vec4<f32>, SGR>;
                //#unroll r SGR
                own[$r] = b_texel$q(min($r * SGW + lane, RN - 1u), k4, col0);
                //#end
                //#unroll u RN
                bt[$u] = subgroupBroadcast(own[$u / SGW], $u % SGW);
                //#end
            }
            //#end
            if (tb == 1u) {
                //#unroll j RN
                let vb$j = bt[$j];
                bv[4u * $j] = vb$j.x; bv[4u * $j + 1u] = vb$j.y;
                bv[4u * $j + 2u] = vb$j.z; bv[4u * $j + 3u] = vb$j.w;
                //#end
            } else {
                //#unroll r 4
                //#unroll j RN4
                let vb$r$j = bt[$r * RN4 + $j];
                bv[16u * $j + $r] = vb$r$j.x; bv[16u * $j + 4u + $r] = vb$r$j.y;
                bv[16u * $j + 8u + $r] = vb$r$j.z; bv[16u * $j + 12u + $r] = vb$r$j.w;
                //#end
                //#end
            }
            // Each accumulator read once, its four products added in order, and written once: on
            // SIMD adapters such as llvmpipe every write of a value carried across loop
            // iterations is a masked blend through the stack, one per four products here.
            //#unroll i RM
            //#unroll j RN
            {
                var t = acc[$i * RN + $j];
                //#unroll r 4
                t += av[4u * $i + $r] * bv[4u * $j + $r];
                //#end
                acc[$i * RN + $j] = t;
            }
            //#end
            //#end
        }
    }
    //#end
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
}
//#end

// A subgroup's lanes are whole: the host makes each product's invocations a multiple of SGW.
@compute @workgroup_size(64)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          //#unroll s SGON
          @builtin(subgroup_invocation_id) sg_lane: u32,
          //#end
          @builtin(local_invocation_index) li: u32) {
    var t = (wid.y * nwg.x + wid.x) * 64u + li;
    var lane = 0u;
    //#unroll s SGON
    lane = sg_lane;
    //#end
    //#unroll q PRODUCTS
    if (t < p.total$q) {
        product$q(t, lane);
        return;
    }
    t -= p.total$q;
    //#end
}
