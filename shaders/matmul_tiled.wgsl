// Matrix product C[m, n] = op(A)[m, k] · op(B)[k, n] (+ bias[n]), op = optional transpose, as a
// classic workgroup-memory tiled GEMM for hardware GPUs (software adapters run matmul.wgsl).
//
// Each workgroup of 256 invocations (16 x 16) owns a BM x BN tile of C; invocation (ty, tx)
// keeps TM x TN of it in registers: rows ty + 16 i, columns tx + 16 j (strided, so the
// workgroup-memory reads of a row of invocations hit distinct banks and the stores coalesce).
// K is walked in steps of BK: the workgroup loads a BM x BK tile of op(A) and a BK x BN tile of
// op(B) into workgroup memory (zeros past the edges), waits on a barrier, multiplies, and waits
// again before the next load. Every element of C is one invocation's sum in increasing k: no
// atomics, deterministic.
//
// The host prepends TA, TB (u32, 1 = transposed), BM, BN, BK (tile sizes), TM = BM / 16,
// TN = BN / 16, LA = BM * BK / 256 and LB = BK * BN / 256 (elements each invocation loads per
// K-step) and expands the `//#unroll` blocks.

struct Params {
    m: u32, n: u32, k: u32, has_bias: u32,
    ntiles: u32, tiles: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Row strides of the tiles in workgroup memory, padded by one so that loads writing down a
// column do not all hit one bank.
const SA: u32 = BM + 1u;
const SB: u32 = BN + 1u;
// ta[kk * SA + i] = op(A)[row0 + i, k0 + kk]; tb[kk * SB + j] = op(B)[k0 + kk, col0 + j].
var<workgroup> ta: array<f32, BK * SA>;
var<workgroup> tb: array<f32, BK * SB>;

@compute @workgroup_size(256)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    // The tile is uniform across the workgroup, so this return keeps the barriers uniform.
    let tile = wid.y * nwg.x + wid.x;
    if (tile >= p.tiles) { return; }
    let row0 = (tile / p.ntiles) * BM;
    let col0 = (tile % p.ntiles) * BN;
    let tx = li % 16u;
    let ty = li / 16u;
    var acc: array<f32, TM * TN>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // op(A) tile: walk along whichever index is contiguous in memory.
        //#unroll r LA
        {
            var i: u32;
            var kk: u32;
            if (TA == 1u) {
                // a is [k, m]: consecutive invocations read consecutive rows of op(A).
                i = li % BM;
                kk = li / BM + $r * (256u / BM);
            } else {
                // a is [m, k]: consecutive invocations read consecutive k.
                kk = li % BK;
                i = li / BK + $r * (256u / BK);
            }
            let row = row0 + i;
            let kx = k0 + kk;
            var v = 0.0;
            if (row < p.m && kx < p.k) {
                v = a[select(row * p.k + kx, kx * p.m + row, TA == 1u)];
            }
            ta[kk * SA + i] = v;
        }
        //#end
        // op(B) tile.
        //#unroll r LB
        {
            var j: u32;
            var kk: u32;
            if (TB == 1u) {
                // b is [n, k]: consecutive invocations read consecutive k.
                kk = li % BK;
                j = li / BK + $r * (256u / BK);
            } else {
                // b is [k, n]: consecutive invocations read consecutive columns.
                j = li % BN;
                kk = li / BN + $r * (256u / BN);
            }
            let col = col0 + j;
            let kx = k0 + kk;
            var v = 0.0;
            if (col < p.n && kx < p.k) {
                v = b[select(kx * p.n + col, col * p.k + kx, TB == 1u)];
            }
            tb[kk * SB + j] = v;
        }
        //#end
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, TM>;
            var bv: array<f32, TN>;
            //#unroll i TM
            av[$i] = ta[kk * SA + ty + 16u * $i];
            //#end
            //#unroll j TN
            bv[$j] = tb[kk * SB + tx + 16u * $j];
            //#end
            //#unroll i TM
            //#unroll j TN
            acc[$i * TN + $j] += av[$i] * bv[$j];
            //#end
            //#end
        }
        workgroupBarrier();
    }
    //#unroll i TM
    {
        let row = row0 + ty + 16u * $i;
        if (row < p.m) {
            //#unroll j TN
            {
                let col = col0 + tx + 16u * $j;
                if (col < p.n) {
                    var v = acc[$i * TN + $j];
                    if (p.has_bias != 0u) { v += bias[col]; }
                    c[row * p.n + col] = act(v);
                }
            }
            //#end
        }
    }
    //#end
}
