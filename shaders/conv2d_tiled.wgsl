// Convolution forward, input gradient and weight gradient as workgroup-memory tiled implicit
// GEMMs for hardware GPUs (software adapters run conv2d.wgsl). Per group of channels:
//   forward       y[co, (n, oy, ox)]      = sum over (ci, ky, kx) of w[co, (ci, ky, kx)] * x-col
//   input grad    gx[ci, (n, iy, ix)]     = sum over (co, ky, kx) of w[co, ci, ky, kx] * gy-col
//   weight grad   gw[co, (ci, ky, kx)]    = sum over (n, oy, ox) of gy[co, (n, oy, ox)] * x-col
// where the "col" operands are never materialised: the tile loaders compute each im2col (or
// col2im) element from the geometry, reading zero outside the input (padding, and for the
// input gradient the positions no output stride lands on).
//
// The GEMM is the one of matmul_tiled.wgsl: a BM x BN output tile per 256-invocation workgroup,
// TM x TN per invocation (rows ty + 16 i, columns tx + 16 j), K walked in BK-deep tiles loaded
// into workgroup memory between two barriers. Each output is one invocation's sum in a fixed
// order; the weight gradient is split over chunks of the (n, oy, ox) positions into partial
// slices that the host sums in a fixed order (reduce.wgsl's sum_outer). No atomics.
//
// The host prepends the specialisation constants (u32):
//   KH, KW  kernel size      SH, SW  stride      PH, PW  padding      DH, DW  dilation
//   BM, BN, BK  tile sizes   TM = BM / 16, TN = BN / 16
//   LA = BM * BK / 256, LB = BK * BN / 256  (elements each invocation loads per K-tile)
// and expands the `//#unroll VAR COUNT` ... `//#end` blocks ($VAR = 0u, 1u, ...).

struct Params {
    n: u32, c_in: u32, h: u32, w: u32,
    c_out: u32, oh: u32, ow: u32, cig: u32,
    cog: u32, mtiles: u32, ntiles: u32, tiles: u32,
    has_bias: u32, kchunk: u32, groups: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> in0: array<f32>;
@group(0) @binding(2) var<storage, read> in1: array<f32>;
@group(0) @binding(3) var<storage, read> in2: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const KHW: u32 = KH * KW;
// Row strides of the tiles in workgroup memory, padded by one so that loads writing down a
// column do not all hit one bank.
const SA: u32 = BM + 1u;
const SB: u32 = BN + 1u;
// ta[kk * SA + i] = A[row0 + i, k0 + kk]; tb[kk * SB + j] = B[k0 + kk, col0 + j].
var<workgroup> ta: array<f32, BK * SA>;
var<workgroup> tb: array<f32, BK * SB>;

// Where a workgroup's tile lies: its channel group, first row and column of the GEMM, and
// (weight gradient) its chunk of positions.
struct Tile {
    grp: u32,
    row0: u32,
    col0: u32,
    chunk: u32,
}

// The tile of workgroup `t` (columns fastest, then rows, groups, chunks).
fn tile_of(t: u32) -> Tile {
    var r = t / p.ntiles;
    let col0 = (t % p.ntiles) * BN;
    let row0 = (r % p.mtiles) * BM;
    r = r / p.mtiles;
    return Tile(r % p.groups, row0, col0, r / p.groups);
}

// acc += the product of the two tiles in workgroup memory (between the barriers).
fn tile_product(li: u32, acc: ptr<function, array<f32, TM * TN>>) {
    let tx = li % 16u;
    let ty = li / 16u;
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
        (*acc)[$i * TN + $j] += av[$i] * bv[$j];
        //#end
        //#end
    }
}

// y[n, co, oy, ox] = sum x[n, ci, oy*SH + ky*DH - PH, ox*SW + kx*DW - PW] * w[co, ci, ky, kx] (+ b[co]).
// GEMM per group: rows co (cog), columns (n, oy, ox), k = (ci, ky, kx) (cig * KH * KW).
// in0 = x, in1 = w, in2 = bias (bound to w when absent), dst = y.
@compute @workgroup_size(256)
fn conv_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    // The tile is uniform across the workgroup, so this return keeps the barriers uniform.
    let t = wid.y * nwg.x + wid.x;
    if (t >= p.tiles) { return; }
    let tile = tile_of(t);
    let kdim = p.cig * KHW;
    let ohw = p.oh * p.ow;
    let npos = p.n * ohw;
    // A (weights, contiguous along k): this invocation loads k0 + akk of LA rows.
    let akk = li % BK;
    // B (input columns): this invocation loads column bj of LB k-rows.
    let bj = li % BN;
    let pcol = tile.col0 + bj;
    let bok = pcol < npos;
    let ps = pcol % ohw;
    let iy0 = i32((ps / p.ow) * SH) - i32(PH);
    let ix0 = i32((ps % p.ow) * SW) - i32(PW);
    let xbase = ((pcol / ohw) * p.c_in + tile.grp * p.cig) * p.h;
    let wbase = tile.grp * p.cog;
    var acc: array<f32, TM * TN>;
    for (var k0 = 0u; k0 < kdim; k0 += BK) {
        //#unroll r LA
        {
            let i = li / BK + $r * (256u / BK);
            let co = tile.row0 + i;
            let k = k0 + akk;
            var v = 0.0;
            if (co < p.cog && k < kdim) { v = in1[(wbase + co) * kdim + k]; }
            ta[akk * SA + i] = v;
        }
        //#end
        //#unroll r LB
        {
            let kk = li / BN + $r * (256u / BN);
            let k = k0 + kk;
            let tap = k % KHW;
            let iy = iy0 + i32((tap / KW) * DH);
            let ix = ix0 + i32((tap % KW) * DW);
            var v = 0.0;
            if (bok && k < kdim && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                v = in0[(xbase + (k / KHW) * p.h + u32(iy)) * p.w + u32(ix)];
            }
            tb[kk * SB + bj] = v;
        }
        //#end
        workgroupBarrier();
        tile_product(li, &acc);
        workgroupBarrier();
    }
    let tx = li % 16u;
    let ty = li / 16u;
    //#unroll j TN
    {
        let pc = tile.col0 + tx + 16u * $j;
        if (pc < npos) {
            let n = pc / ohw;
            let s = pc % ohw;
            //#unroll i TM
            {
                let cl = tile.row0 + ty + 16u * $i;
                if (cl < p.cog) {
                    let co = wbase + cl;
                    var v = acc[$i * TN + $j];
                    if (p.has_bias != 0u) { v += in2[co]; }
                    dst[(n * p.c_out + co) * ohw + s] = act(v);
                }
            }
            //#end
        }
    }
    //#end
}

// grad_x[n, ci, iy, ix] = sum over the (co, ky, kx) whose output position lands on (iy, ix) of
// grad_y[n, co, oy, ox] * w[co, ci, ky, kx].
// GEMM per group: rows ci (cig), columns (n, iy, ix), k = (co, ky, kx) (cog * KH * KW).
// in0 = grad_y, in1 = w, dst = grad_x.
@compute @workgroup_size(256)
fn conv_bwd_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) li: u32) {
    let t = wid.y * nwg.x + wid.x;
    if (t >= p.tiles) { return; }
    let tile = tile_of(t);
    let kdim = p.cog * KHW;
    let hw = p.h * p.w;
    let npos = p.n * hw;
    // A (weights w[co, ci, tap], contiguous along the tap): column k0 + akk of LA rows.
    let akk = li % BK;
    // B (output-gradient columns): column bj of LB k-rows.
    let bj = li % BN;
    let pcol = tile.col0 + bj;
    let bok = pcol < npos;
    let ps = pcol % hw;
    let ny0 = i32(ps / p.w + PH);
    let nx0 = i32(ps % p.w + PW);
    let gbase = ((pcol / hw) * p.c_out + tile.grp * p.cog) * p.oh;
    var acc: array<f32, TM * TN>;
    for (var k0 = 0u; k0 < kdim; k0 += BK) {
        //#unroll r LA
        {
            let i = li / BK + $r * (256u / BK);
            let cl = tile.row0 + i;
            let k = k0 + akk;
            var v = 0.0;
            if (cl < p.cig && k < kdim) {
                let co = tile.grp * p.cog + k / KHW;
                v = in1[(co * p.cig + cl) * KHW + k % KHW];
            }
            ta[akk * SA + i] = v;
        }
        //#end
        //#unroll r LB
        {
            let kk = li / BN + $r * (256u / BN);
            let k = k0 + kk;
            let tap = k % KHW;
            let ny = ny0 - i32((tap / KW) * DH);
            let nx = nx0 - i32((tap % KW) * DW);
            let uy = u32(max(ny, 0));
            let ux = u32(max(nx, 0));
            let oy = uy / SH;
            let ox = ux / SW;
            var v = 0.0;
            if (bok && k < kdim && ny >= 0 && nx >= 0 && uy % SH == 0u && ux % SW == 0u
                && oy < p.oh && ox < p.ow) {
                v = in0[(gbase + (k / KHW) * p.oh + oy) * p.ow + ox];
            }
            tb[kk * SB + bj] = v;
        }
        //#end
        workgroupBarrier();
        tile_product(li, &acc);
        workgroupBarrier();
    }
    let tx = li % 16u;
    let ty = li / 16u;
    //#unroll j TN
    {
        let pc = tile.col0 + tx + 16u * $j;
        if (pc < npos) {
            let n = pc / hw;
            let s = pc % hw;
            //#unroll i TM
            {
                let cl = tile.row0 + ty + 16u * $i;
                if (cl < p.cig) {
                    dst[(n * p.c_in + tile.grp * p.cig + cl) * hw + s] = acc[$i * TN + $j];
                }
            }
            //#end
        }
    }
    //#end
}

// Partial weight gradients, one slice per chunk of the (n, oy, ox) positions (summed afterwards
// in a fixed order): gw[co, ci, ky, kx] = sum over the chunk's positions of
// grad_y[n, co, oy, ox] * x[n, ci, oy*SH + ky*DH - PH, ox*SW + kx*DW - PW].
// GEMM per group: rows co (cog), columns (ci, ky, kx) (cig * KH * KW), k = positions.
// in0 = x, in1 = grad_y, dst = partials [chunks, c_out, cig, KH, KW].
@compute @workgroup_size(256)
fn conv_bwd_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let t = wid.y * nwg.x + wid.x;
    if (t >= p.tiles) { return; }
    let tile = tile_of(t);
    let ncols = p.cig * KHW;
    let ohw = p.oh * p.ow;
    let kbeg = tile.chunk * p.kchunk;
    let kend = min(kbeg + p.kchunk, p.n * ohw);
    // Both operands are contiguous along the positions: this invocation loads position
    // k0 + kk of LA rows of grad_y and LB columns of the input.
    let kk = li % BK;
    var xoff: array<u32, LB>;
    var dy: array<u32, LB>;
    var dx: array<u32, LB>;
    var cok: array<bool, LB>;
    //#unroll r LB
    {
        let col = tile.col0 + li / BK + $r * (256u / BK);
        let tap = col % KHW;
        xoff[$r] = (tile.grp * p.cig + col / KHW) * p.h;
        dy[$r] = (tap / KW) * DH;
        dx[$r] = (tap % KW) * DW;
        cok[$r] = col < ncols;
    }
    //#end
    var acc: array<f32, TM * TN>;
    for (var k0 = kbeg; k0 < kend; k0 += BK) {
        let k = k0 + kk;
        let kok = k < kend;
        let n = k / ohw;
        let s = k % ohw;
        let oy = s / p.ow;
        let ox = s % p.ow;
        //#unroll r LA
        {
            let i = li / BK + $r * (256u / BK);
            let cl = tile.row0 + i;
            var v = 0.0;
            if (kok && cl < p.cog) { v = in1[(n * p.c_out + tile.grp * p.cog + cl) * ohw + s]; }
            ta[kk * SA + i] = v;
        }
        //#end
        //#unroll r LB
        {
            let j = li / BK + $r * (256u / BK);
            let iy = i32(oy * SH + dy[$r]) - i32(PH);
            let ix = i32(ox * SW + dx[$r]) - i32(PW);
            var v = 0.0;
            if (kok && cok[$r] && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                v = in0[(n * p.c_in * p.h + xoff[$r] + u32(iy)) * p.w + u32(ix)];
            }
            tb[kk * SB + j] = v;
        }
        //#end
        workgroupBarrier();
        // Two-level summation (per K-tile, then across tiles) keeps the f32 error small.
        var part: array<f32, TM * TN>;
        tile_product(li, &part);
        //#unroll i TM
        //#unroll j TN
        acc[$i * TN + $j] += part[$i * TN + $j];
        //#end
        //#end
        workgroupBarrier();
    }
    let tx = li % 16u;
    let ty = li / 16u;
    let wsize = p.c_out * ncols;
    //#unroll i TM
    {
        let cl = tile.row0 + ty + 16u * $i;
        if (cl < p.cog) {
            let base = tile.chunk * wsize + (tile.grp * p.cog + cl) * ncols;
            //#unroll j TN
            {
                let col = tile.col0 + tx + 16u * $j;
                if (col < ncols) { dst[base + col] = acc[$i * TN + $j]; }
            }
            //#end
        }
    }
    //#end
}
