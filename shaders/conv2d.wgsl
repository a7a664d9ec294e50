// Convolution: forward, input gradient and weight gradient as register-blocked direct
// ("implicit GEMM") kernels. No workgroup memory, no barriers, no atomics: every invocation owns a
// block of COB channels x PX consecutive positions of one row and keeps it in registers; the
// input row segment those positions read is loaded once per (channel, kernel row) and reused for
// every kernel column. Backward passes are gathers, so results are deterministic.
//
// The host prepends the specialisation constants (u32):
//   KH, KW  kernel size      SH, SW  stride      PH, PW  padding      DH, DW  dilation
//   COB     channels per invocation              PX      positions per invocation
//   SEG = (PX-1)*SW + (KW-1)*DW + 1 (input segment)  SEGB = PX + (KW-1)*DW (gradient segment)
//   KYB     the weight gradient's kernel rows per invocation, KYBLOCKS = ceil(KH / KYB) blocks
//           of them, COBKYBKW = COB * KYB * KW taps
//   ACT     the forward's fused activation (activation_fn.wgsl is prepended to this file)
//   WUNI    1 when the weight is also bound as a uniform array of WVEC vec4s (it fits the
//           adapter's uniform binding): the forward and the input gradient read it from there,
//           a broadcast from the uniform cache instead of a storage load per invocation
//           (measured 30-35 % faster on llvmpipe); otherwise WVEC = 1 and they read `in1`
//   vec4 rows: the forward and the weight gradient read (and the forward writes) rows in vec4s
//           when the rows of x and y are whole vec4s (widths multiples of 4), at stride and
//           dilation 1 with PX a multiple of 4: on llvmpipe a storage access costs per lane,
//           about as much for a vec4 as for one f32. The segment of x is then SEGV vec4s from
//           column ox0 - PWA (PWA = PW rounded up to 4), element s at seg[s + SEGOFF],
//           SEGOFF = PWA - PW, and PXV = PX / 4 vec4s of y (grad_y). Otherwise PXS = PX and
//           SEGS = SEG scalar accesses (PXV = SEGV = SEGOFF = 0); SEGN is the segment's length.
//   unaligned vec4 rows (ROWU = 1, where the vec4 rows above do not apply): a contiguous run of
//           a row (x's segment of SEG, the weight gradient's PX values of grad_y, the input
//           gradient's SEGB values of grad_y, stride 1) is read as the whole vec4s that cover
//           it, SEGUV and PXUV of them (the run's length + 3, over 4, rounded up; SEGB = SEG
//           at stride 1), and shifted
//           into place by the run's start modulo 4 (three selects per value, far cheaper on
//           llvmpipe than a load per value). Vec4 bindings cover their buffer rounded up to
//           whole vec4s; values past a row's end are masked to zero like the padding. GS and
//           SEGBS count the scalar loads of the weight gradient's grad_y and the input
//           gradient's segment: PX and SEGB, or 0 when vec4s are read.
//   ROWOW   the input gradient's output width when one block covers a whole input row at
//           stride 1 (see tap_inside_row), else 0
//   WTEX    1 when the weight does not fit a uniform binding and the context reads operands
//           through textures: the forward and the input gradient read it from wt, a kernel
//           row's KW taps as the KWUV texels covering them (see weight_row)
//   SGW     the lanes of a subgroup when the forward and the input gradient share their weight
//           loads across one (SGON = 1, SGOFF = 0; gpu/context.rs's subgroup_size): each lane
//           loads SGR of the COBKW = COB * KW taps of a kernel row for the block's channels,
//           and takes the others from the lanes that loaded them (see block_taps). Otherwise
//           SGW = SGR = SGON = 0, SGOFF = 1, and every lane loads every tap.
//   TEX, STO, TEXW: the vec4 reads above come from read-only storage textures (TEX = 1,
//           STO = 0: in0t and in1t, vec4 i at texel (i % TEXW, i / TEXW)) or from in0v and in1v
//           (TEX = 0, STO = 1), as the context chose (gpu/texture_operands.rs: on llvmpipe a
//           texel load can cost a fraction of a storage-buffer load).
// and expands the `//#unroll VAR COUNT` ... `//#end` blocks ($VAR = 0u, 1u, ...), so every
// private array below is indexed by constants and lives in registers.
//
// An accumulator carried across a loop is read once per iteration into a local, its products
// added in order, and written back once: on SIMD adapters such as llvmpipe every write of a
// loop-carried value is a masked blend through the stack (llvmpipe, seed LeNet's step: conv
// forward 23-25 -> 15-16 ms, input gradient 22-25 -> 14-16). The sums are the same, in the same
// order, as one update per product.

struct Params {
    n: u32, c_in: u32, h: u32, w: u32,
    c_out: u32, oh: u32, ow: u32, cig: u32,
    cog: u32, xblocks: u32, cblocks: u32, total: u32,
    has_bias: u32, per_chunk: u32, wsize: u32, bias_end: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> in0: array<f32>;
@group(0) @binding(2) var<storage, read> in1: array<f32>;
@group(0) @binding(3) var<storage, read> in2: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
// x, the weight gradient's grad_y and the forward's y again, in vec4s (see "vec4 rows" above).
@group(0) @binding(6) var<storage, read> in0v: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> in1v: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dstv: array<vec4<f32>>;
// The weight again, as a uniform array (see WUNI).
@group(0) @binding(5) var<uniform> wu: array<vec4<f32>, WVEC>;
// in0v and in1v through textures instead (TEX = 1, STO = 0; gpu/texture_operands.rs): vec4 i
// is texel (i % TEXW, i / TEXW), a fetch far cheaper than a storage load on llvmpipe.
@group(0) @binding(9) var in0t: texture_storage_2d<rgba32float, read>;
@group(0) @binding(10) var in1t: texture_storage_2d<rgba32float, read>;
// The weight through a texture instead (WTEX = 1: it does not fit a uniform binding and the
// context reads operands through textures), vec4 i at texel (i % TEXW, i / TEXW).
@group(0) @binding(11) var wt: texture_storage_2d<rgba32float, read>;

// The texel holding vec4 i of a texture-bound operand.
fn texel(i: u32) -> vec2<u32> {
    return vec2<u32>(i % TEXW, i / TEXW);
}

// Vec4 i of in0 (x, or the input gradient's grad_y), from in0v or in0t.
fn in0_vec4(i: u32) -> vec4<f32> {
    //#unroll t TEX
    { return textureLoad(in0t, texel(i)); }
    //#end
    //#unroll t STO
    { return in0v[i]; }
    //#end
}

// Vec4s of in0 that may be read (a texture's may reach past the buffer's: only masked values
// come from there).
fn in0_vec4_count() -> u32 {
    //#unroll t TEX
    { let d = textureDimensions(in0t); return d.x * d.y; }
    //#end
    //#unroll t STO
    { return arrayLength(&in0v); }
    //#end
}

// Vec4 i of in1 (the weight gradient's grad_y), from in1v or in1t.
fn in1_vec4(i: u32) -> vec4<f32> {
    //#unroll t TEX
    { return textureLoad(in1t, texel(i)); }
    //#end
    //#unroll t STO
    { return in1v[i]; }
    //#end
}

// Vec4s of in1 that may be read.
fn in1_vec4_count() -> u32 {
    //#unroll t TEX
    { let d = textureDimensions(in1t); return d.x * d.y; }
    //#end
    //#unroll t STO
    { return arrayLength(&in1v); }
    //#end
}

// Vec4 i of the weight through wt (WTEX; zeros otherwise), i clamped to the last texel (a
// run's covering texels may reach past the weight, for values never used).
fn weight_texel(i: u32) -> vec4<f32> {
    //#unroll t WTEX
    {
        let d = textureDimensions(wt);
        let k = min(i, d.x * d.y - 1u);
        return textureLoad(wt, texel(k));
    }
    //#end
    return vec4<f32>();
}

// Weight element i (of in1, the weight, in the forward and the input gradient): through wt
// (WTEX) or wu (WUNI) where bound so (on llvmpipe a storage load costs per lane several times
// a uniform or texel load; one value of wu measured cheaper than its whole vec4), otherwise
// from in1.
fn weight(i: u32) -> f32 {
    if (WTEX != 0u) { return weight_texel(i / 4u)[i % 4u]; }
    if (WUNI != 0u) { return wu[i / 4u][i % 4u]; }
    return in1[i];
}

// The KW taps of one kernel row, from weight element `start`: through the texture (WTEX) the
// KWUV texels covering them, shifted into place (a texel costs about what one value does),
// otherwise one by one (a uniform load of one value measured cheaper than of a vec4).
fn weight_row(start: u32) -> array<f32, KW> {
    var taps: array<f32, KW>;
    if (WTEX != 0u) {
        var buf: array<f32, KWUV * 4u>;
        //#unroll t KWUV
        {
            let v = weight_texel(start / 4u + $t);
            buf[4u * $t] = v.x;
            buf[4u * $t + 1u] = v.y;
            buf[4u * $t + 2u] = v.z;
            buf[4u * $t + 3u] = v.w;
        }
        //#end
        let sh = start & 3u;
        //#unroll kx KW
        taps[$kx] = shifted(buf[$kx], buf[$kx + 1u], buf[$kx + 2u], buf[$kx + 3u], sh);
        //#end
    } else {
        //#unroll kx KW
        taps[$kx] = weight(start + $kx);
        //#end
    }
    return taps;
}

// The KW taps of one kernel row for each of a block's COB channels, channel j's at [j * KW]:
// weight element base + min(first + j, last) * stride + kx. Every lane of a subgroup calls it
// with the same arguments, all of them active (the kernels below keep every lane to the end).
// With SGON each lane loads SGR taps, tap r * SGW + lane in round r, and takes each tap from
// the lane that loaded it: on llvmpipe a uniform load is made lane by lane, a broadcast is one
// shuffle (seed LeNet's conv2 forward and input gradient each spent about 3 ms per step on
// their weight loads). Otherwise each lane loads every tap itself (weight_row).
fn block_taps(base: u32, stride: u32, first: u32, last: u32, lane: u32) -> array<f32, COBKW> {
    var taps: array<f32, COBKW>;
    //#unroll s SGOFF
    {
        //#unroll j COB
        {
            let wv = weight_row(base + min(first + $j, last) * stride);
            //#unroll kx KW
            taps[$j * KW + $kx] = wv[$kx];
            //#end
        }
        //#end
    }
    //#end
    //#unroll s SGON
    {
        var vals: array<f32, SGR>;
        //#unroll r SGR
        {
            // Lanes past the last tap load it again.
            let i = min($r * SGW + lane, COBKW - 1u);
            vals[$r] = weight(base + min(first + i / KW, last) * stride + i % KW);
        }
        //#end
        //#unroll i COBKW
        taps[$i] = subgroupBroadcast(vals[$i / SGW], $i % SGW);
        //#end
    }
    //#end
    return taps;
}

// The kernel rows [x, y) a subgroup loops over: the union of its lanes' `own` rows with SGON
// (every lane then stays in the loop and skips the rows outside its own inside it, so that all
// of them share the weight loads), else the lane's own.
fn subgroup_rows(own: vec2<u32>) -> vec2<u32> {
    var rows = own;
    //#unroll s SGON
    rows = vec2<u32>(subgroupMin(own.x), subgroupMax(own.y));
    //#end
    return rows;
}

// Value `sh` (0..3) of four consecutive ones: the run's value after shifting by sh.
fn shifted(v0: f32, v1: f32, v2: f32, v3: f32, sh: u32) -> f32 {
    return select(select(v0, v1, sh == 1u), select(v2, v3, sh == 3u), sh >= 2u);
}

// The SEGUV whole vec4s of in0 from the one holding element `start` (which may lie before the
// buffer: the clamped vec4s then only feed masked values), flattened.
fn covering_vec4s_in0(start: i32) -> array<f32, SEGUV * 4u> {
    var buf: array<f32, SEGUV * 4u>;
    let last = i32(in0_vec4_count()) - 1;
    //#unroll t SEGUV
    {
        let v = in0_vec4(u32(clamp((start >> 2u) + i32($t), 0, last)));
        buf[4u * $t] = v.x;
        buf[4u * $t + 1u] = v.y;
        buf[4u * $t + 2u] = v.z;
        buf[4u * $t + 3u] = v.w;
    }
    //#end
    return buf;
}

// The PXUV whole vec4s of in1 from the one holding element `start`, flattened.
fn covering_vec4s_in1(start: u32) -> array<f32, PXUV * 4u> {
    var buf: array<f32, PXUV * 4u>;
    let last = in1_vec4_count() - 1u;
    //#unroll t PXUV
    {
        let v = in1_vec4(min(start / 4u + $t, last));
        buf[4u * $t] = v.x;
        buf[4u * $t + 1u] = v.y;
        buf[4u * $t + 2u] = v.z;
        buf[4u * $t + 3u] = v.w;
    }
    //#end
    return buf;
}

// The row segment of x that PX outputs from column ox0 read: columns ox0*SW - PW .. + SEG of
// the row starting at `row` (zero outside it, and everywhere when !row_ok), element s at
// [s + SEGOFF]. Scalar loads, or with vec4 rows SEGV vec4s from column ox0 - PWA.
fn input_segment(row: u32, row_ok: bool, ox0: u32) -> array<f32, SEGN> {
    var seg: array<f32, SEGN>;
    let ix0 = i32(ox0 * SW) - i32(PW);
    //#unroll s SEGS
    {
        let ix = ix0 + i32($s);
        let ok = row_ok && ix >= 0 && ix < i32(p.w);
        seg[$s] = select(0.0, in0[row + u32(select(0, ix, ok))], ok);
    }
    //#end
    //#unroll u ROWU
    {
        let buf = covering_vec4s_in0(i32(row) + ix0);
        let sh = u32((i32(row) + ix0) & 3);
        //#unroll s SEG
        {
            let ix = ix0 + i32($s);
            let ok = row_ok && ix >= 0 && ix < i32(p.w);
            let v = shifted(buf[$s], buf[$s + 1u], buf[$s + 2u], buf[$s + 3u], sh);
            seg[$s] = select(0.0, v, ok);
        }
        //#end
    }
    //#end
    //#unroll v SEGV
    {
        // Columns ox0 - PWA + 4v ..+3: a whole vec4 of the row or wholly outside it.
        let c0 = i32(ox0 + 4u * $v) - i32(PWA);
        let ok = row_ok && c0 >= 0 && c0 < i32(p.w);
        let xv = select(vec4<f32>(), in0_vec4(select(0u, (row + u32(select(0, c0, ok))) / 4u, ok)), ok);
        seg[4u * $v] = xv.x;
        seg[4u * $v + 1u] = xv.y;
        seg[4u * $v + 2u] = xv.z;
        seg[4u * $v + 3u] = xv.w;
    }
    //#end
    return seg;
}

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + li;
}

// The forward's and the input gradient's invocation: a channel block `cb` taken from the
// workgroup (ceil(total / 64) workgroups per block, blocks in order), so every index derived
// from it (the weights' above all) is the same across the workgroup and the compiler can load
// it once instead of per lane (on SIMD adapters such as llvmpipe a per-lane load is a gather);
// and `s`, the spatial block, below `total` (n * rows * xblocks): s = (row * n + image) *
// xblocks + column block. Invocations past the last block (`live` false) work on it again and
// store nothing: their lanes stay for the weight loads block_taps shares across a subgroup. Neighbouring invocations then share the row
// and skip the same kernel rows where it meets the padding: on SIMD adapters such as llvmpipe a
// branch some lanes of a group take costs the whole group. Seed LeNet's conv2 input gradient
// (a row of grad_y reaches 5 of the 14 rows of 14 it sums over, each row block 8 lanes wide)
// ran every kernel row for nearly every lane group when images varied slowest.
struct BlockId { cb: u32, s: u32, live: bool }

// (The kernels return first when p.total is 0: then nothing here means anything.)
fn block_id(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> BlockId {
    let g = wid.y * nwg.x + wid.x;
    let per = (p.total + 63u) / 64u;
    let s = (g % per) * 64u + li;
    return BlockId(g / per, min(s, p.total - 1u), s < p.total);
}

// The kernel rows [x, y) the forward's output row oy reads inside the input: iy = oy*SH + ky*DH
// - PH in [0, h). Loops run over these bounds rather than skipping the others inside: on SIMD
// adapters such as llvmpipe a skipped iteration costs the group as much as a run one, unless
// every lane leaves the loop (see block_id: the lanes of a group share the row).
fn forward_kernel_rows(oy: u32) -> vec2<u32> {
    let lo = i32(PH) - i32(oy * SH);
    let hi = i32(p.h + PH) - i32(oy * SH);
    return vec2<u32>(select(0u, (u32(lo) + DH - 1u) / DH, lo > 0),
                     select(0u, min(KH, (u32(hi) + DH - 1u) / DH), hi > 0));
}

// The kernel rows [x, y) that can carry grad_y's rows to the input gradient's row iy: oy =
// (iy + PH - ky*DH) / SH in [0, oh) (the division's remainder is still checked per row).
fn input_grad_kernel_rows(iy: u32) -> vec2<u32> {
    let lo = i32(iy + PH) - i32((p.oh - 1u) * SH);
    return vec2<u32>(select(0u, (u32(lo) + DH - 1u) / DH, lo > 0),
                     min(KH, (iy + PH) / DH + 1u));
}

// The multiply-adds of one kernel row (the block's taps, block_taps) for the forward's output
// channel j of the block. One function per channel, inlined by every compiler: the WGSL front
// end's time grows with the square of a function's expression count (gpu/shader_source.rs),
// and the COB × KW × PX unrolled lines in one function were most of a conv pipeline's parse.
//#unroll j COB
fn fwd_kernel_row$j(acc: ptr<function, array<f32, COB * PX>>, seg: array<f32, SEGN>,
                    taps: array<f32, COBKW>) {
    //#unroll q PX
    {
        var t = (*acc)[$j * PX + $q];
        //#unroll kx KW
        t += taps[$j * KW + $kx] * seg[$q * SW + $kx * DW + SEGOFF];
        //#end
        (*acc)[$j * PX + $q] = t;
    }
    //#end
}
//#end

// y[n, co, oy, ox] = act(sum x[n, ci, oy*SH + ky*DH - PH, ox*SW + kx*DW - PW] * w[co, ci, ky, kx] (+ b[co])),
// act the fused epilogue (activation_fn.wgsl; the identity when ACT = 3).
// in0 = x, in1 = w, in2 = bias (bound to w when absent), dst = y.
@compute @workgroup_size(64)
fn conv_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            //#unroll s SGON
            @builtin(subgroup_invocation_id) sg_lane: u32,
            //#end
            @builtin(local_invocation_index) li: u32) {
    // cb is the same across the workgroup: whole workgroups return or none of their lanes.
    if (p.total == 0u) { return; }
    let id = block_id(wid, nwg, li);
    if (id.cb >= p.cblocks) { return; }
    let live = id.live;
    let s = id.s;
    var lane = 0u;
    //#unroll s SGON
    lane = sg_lane;
    //#end
    let cb = id.cb;
    let xb = s % p.xblocks;
    let r = s / p.xblocks;
    // Images vary fastest, then rows: the invocations of a SIMD group share a row, so the kernel
    // rows it skips (outside the input) are skipped by all of them (see block_id).
    let n = r % p.n;
    let oy = r / p.n;
    let bpg = (p.cog + COB - 1u) / COB;
    let grp = cb / bpg;
    let cl0 = (cb % bpg) * COB;
    let ox0 = xb * PX;
    var acc: array<f32, COB * PX>;
    var co: array<u32, COB>;
    //#unroll j COB
    co[$j] = grp * p.cog + min(cl0 + $j, p.cog - 1u);
    //#end
    let own = forward_kernel_rows(oy);
    let rows = subgroup_rows(own);
    for (var cl = 0u; cl < p.cig; cl++) {
        let ci = grp * p.cig + cl;
        for (var ky = rows.x; ky < rows.y; ky++) {
            let taps = block_taps((cl * KH + ky) * KW, p.cig * KH * KW, grp * p.cog + cl0,
                                  grp * p.cog + p.cog - 1u, lane);
            // Inside the input: this lane's own rows.
            if (ky < own.x || ky >= own.y) { continue; }
            let iy = oy * SH + ky * DH - PH;
            let row = ((n * p.c_in + ci) * p.h + iy) * p.w;
            let seg = input_segment(row, true, ox0);
            //#unroll j COB
            fwd_kernel_row$j(&acc, seg, taps);
            //#end
        }
    }
    //#unroll j COB
    if (live && cl0 + $j < p.cog) {
        var b = 0.0;
        if (p.has_bias != 0u) { b = in2[co[$j]]; }
        let base = ((n * p.c_out + co[$j]) * p.oh + oy) * p.ow;
        //#unroll q PXS
        if (ox0 + $q < p.ow) { dst[base + ox0 + $q] = act(acc[$j * PX + $q] + b); }
        //#end
        //#unroll v PXV
        if (ox0 + 4u * $v < p.ow) {
            dstv[(base + ox0) / 4u + $v] = vec4<f32>(
                act(acc[$j * PX + 4u * $v] + b), act(acc[$j * PX + 4u * $v + 1u] + b),
                act(acc[$j * PX + 4u * $v + 2u] + b), act(acc[$j * PX + 4u * $v + 3u] + b));
        }
        //#end
    }
    //#end
}

// Whether the input gradient's product of column q and tap kx (stride 1) can read grad_y inside
// its row. Always, unless one block covers the whole row (ROWOW, the output width, is then
// non-zero and the block starts at column 0): the products reading the zero padding are then
// known when the kernel is compiled and left out (a constant condition, folded away). Seed
// LeNet's conv2 (rows of 10 read for 14 input columns) drops 2 in 7 of its products.
fn tap_inside_row(q: u32, kx: u32) -> bool {
    let ox = i32(q + PW) - i32(kx * DW);
    return ROWOW == 0u || (ox >= 0 && ox < i32(ROWOW));
}

// grad_x[n, ci, iy, ix] = sum over the (co, ky, kx) whose output position lands on (iy, ix) of
// grad_y[n, co, oy, ox] * w[co, ci, ky, kx]: a gather over output positions (no atomics).
// in0 = grad_y, in1 = w, dst = grad_x. COB counts input channels here, PX input columns.
@compute @workgroup_size(64)
fn conv_bwd_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  //#unroll s SGON
                  @builtin(subgroup_invocation_id) sg_lane: u32,
                  //#end
                  @builtin(local_invocation_index) li: u32) {
    // As in conv_fwd.
    if (p.total == 0u) { return; }
    let id = block_id(wid, nwg, li);
    if (id.cb >= p.cblocks) { return; }
    let live = id.live;
    let s = id.s;
    var lane = 0u;
    //#unroll s SGON
    lane = sg_lane;
    //#end
    let cb = id.cb;
    let xb = s % p.xblocks;
    let r = s / p.xblocks;
    let n = r % p.n;
    let iy = r / p.n;
    let bpg = (p.cig + COB - 1u) / COB;
    let grp = cb / bpg;
    let cl0 = (cb % bpg) * COB;
    let ix0 = xb * PX;
    var acc: array<f32, COB * PX>;
    var cl: array<u32, COB>;
    //#unroll j COB
    cl[$j] = min(cl0 + $j, p.cig - 1u);
    //#end
    let own = input_grad_kernel_rows(iy);
    let rows = subgroup_rows(own);
    for (var k = 0u; k < p.cog; k++) {
        let co = grp * p.cog + k;
        for (var ky = rows.x; ky < rows.y; ky++) {
            var taps: array<f32, COBKW>;
            if (SW == 1u) {
                taps = block_taps((co * p.cig * KH + ky) * KW, KH * KW, cl0, p.cig - 1u, lane);
            }
            // 0 <= ny and ny / SH < oh: this lane's own rows.
            if (ky < own.x || ky >= own.y) { continue; }
            let ny = iy + PH - ky * DH;
            if (ny % SH != 0u) { continue; }
            let oy = ny / SH;
            let row = ((n * p.c_out + co) * p.oh + oy) * p.ow;
            if (SW == 1u) {
                // grad_y row segment covering every (q, kx): ox = ix0 + q + PW - kx*DW.
                var seg: array<f32, SEGB>;
                let base = i32(ix0 + PW) - i32((KW - 1u) * DW);
                //#unroll s SEGBS
                {
                    let ox = base + i32($s);
                    let ok = ox >= 0 && ox < i32(p.ow);
                    seg[$s] = select(0.0, in0[row + u32(select(0, ox, ok))], ok);
                }
                //#end
                //#unroll u ROWU
                {
                    let buf = covering_vec4s_in0(i32(row) + base);
                    let sh = u32((i32(row) + base) & 3);
                    //#unroll s SEGB
                    {
                        let ox = base + i32($s);
                        let v = shifted(buf[$s], buf[$s + 1u], buf[$s + 2u], buf[$s + 3u], sh);
                        seg[$s] = select(0.0, v, ox >= 0 && ox < i32(p.ow));
                    }
                    //#end
                }
                //#end
                //#unroll j COB
                {
                    //#unroll q PX
                    {
                        var t = acc[$j * PX + $q];
                        //#unroll kx KW
                        if (tap_inside_row($q, $kx)) {
                            t += taps[$j * KW + $kx] * seg[$q + (KW - 1u - $kx) * DW];
                        }
                        //#end
                        acc[$j * PX + $q] = t;
                    }
                    //#end
                }
                //#end
            } else {
                for (var kx = 0u; kx < KW; kx++) {
                    var gv: array<f32, PX>;
                    //#unroll q PX
                    {
                        let nx = i32(ix0 + $q + PW) - i32(kx * DW);
                        let ox = u32(max(nx, 0)) / SW;
                        let ok = nx >= 0 && u32(max(nx, 0)) % SW == 0u && ox < p.ow;
                        gv[$q] = select(0.0, in0[row + select(0u, ox, ok)], ok);
                    }
                    //#end
                    //#unroll j COB
                    {
                        let wv = weight(((co * p.cig + cl[$j]) * KH + ky) * KW + kx);
                        //#unroll q PX
                        acc[$j * PX + $q] += wv * gv[$q];
                        //#end
                    }
                    //#end
                }
            }
        }
    }
    //#unroll j COB
    if (live && cl0 + $j < p.cig) {
        let base = ((n * p.c_in + grp * p.cig + cl0 + $j) * p.h + iy) * p.w;
        //#unroll q PX
        if (ix0 + $q < p.w) { dst[base + ix0 + $q] = acc[$j * PX + $q]; }
        //#end
    }
    //#end
}

// The length of one chunk's partial sums: the weight's taps, then (with has_bias) the bias.
fn partial_len() -> u32 {
    return p.wsize + select(0u, p.c_out, p.has_bias != 0u);
}

// One chunk's bias-gradient partials for the COB output channels of block cb: the sum over n in
// the chunk, oy, ox of grad_y[n, co, oy, ox] (per image, then across images), stored after the
// chunk's weight taps.
fn bias_partial(tb: u32) {
    let cb = tb % p.cblocks;
    let chunk = tb / p.cblocks;
    let bpg = (p.cog + COB - 1u) / COB;
    let grp = cb / bpg;
    let cl0 = (cb % bpg) * COB;
    let n0 = chunk * p.per_chunk;
    let n1 = min(n0 + p.per_chunk, p.n);
    let ohw = p.oh * p.ow;
    //#unroll j COB
    if (cl0 + $j < p.cog) {
        let co = grp * p.cog + cl0 + $j;
        var s = 0.0;
        for (var n = n0; n < n1; n++) {
            let base = (n * p.c_out + co) * ohw;
            var r = 0.0;
            //#unroll t TEX
            {
                // The plane's values in the same order, four per texel fetch (adding 0.0 for
                // the texels' values outside it leaves r as it was: r is never -0.0).
                for (var k = base / 4u; k < (base + ohw + 3u) / 4u; k++) {
                    let v = in1_vec4(k);
                    //#unroll c 4
                    r += select(0.0, v[$c], 4u * k + $c >= base && 4u * k + $c < base + ohw);
                    //#end
                }
            }
            //#end
            //#unroll t STO
            for (var i = 0u; i < ohw; i++) { r += in1[base + i]; }
            //#end
            s += r;
        }
        dst[chunk * partial_len() + p.wsize + co] = s;
    }
    //#end
}

// The weight gradient's multiply-adds of kernel row r of the block for its output channel j
// (grad_y values in g, the input row in seg): one function per channel and row, as
// fwd_kernel_row.
//#unroll j COB
//#unroll r KYB
fn wgrad_kernel_row$j$r(racc: ptr<function, array<f32, COB * KYB * KW>>,
                        g: array<f32, COB * PX>, seg: array<f32, SEGN>) {
    //#unroll kx KW
    {
        var t = (*racc)[($j * KYB + $r) * KW + $kx];
        //#unroll q PX
        t += g[$j * PX + $q] * seg[$q * SW + $kx * DW + SEGOFF];
        //#end
        (*racc)[($j * KYB + $r) * KW + $kx] = t;
    }
    //#end
}
//#end
//#end

// Partial weight gradients, one slice per chunk of the batch (summed afterwards by
// reduce.wgsl's sum_outer in a fixed order): for every (co block, ci, block of KYB kernel rows)
// the COB x KYB x KW taps of sum over n in chunk, oy, ox of grad_y[n, co, oy, ox] * x[n, ci, iy, ix].
// Each loaded grad_y value feeds KYB * KW taps and each loaded x value COB * KW: on SIMD adapters
// such as llvmpipe every storage load is made lane by lane, so taps per load is what counts,
// and accumulators spilled to the stack are cheap beside it. With vec4 rows (see the top of
// this file) grad_y's PX values are PXV vec4s.
// in0 = x, in1 = grad_y, dst = partials [chunks, partial_len()]. COB counts output channels.
// With has_bias, invocations total..bias_end (one per chunk and co block) write the bias's
// partials (bias_partial).
@compute @workgroup_size(64)
fn conv_bwd_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wid, nwg, li);
    if (t >= p.total) {
        if (t < p.bias_end) { bias_partial(t - p.total); }
        return;
    }
    let kb = t % KYBLOCKS;
    var r = t / KYBLOCKS;
    let cl = r % p.cig;
    r = r / p.cig;
    let cb = r % p.cblocks;
    let chunk = r / p.cblocks;
    let bpg = (p.cog + COB - 1u) / COB;
    let grp = cb / bpg;
    let cl0 = (cb % bpg) * COB;
    let ci = grp * p.cig + cl;
    let ky0 = kb * KYB;
    let n0 = chunk * p.per_chunk;
    let n1 = min(n0 + p.per_chunk, p.n);
    var co: array<u32, COB>;
    //#unroll j COB
    co[$j] = grp * p.cog + min(cl0 + $j, p.cog - 1u);
    //#end
    var acc: array<f32, COB * KYB * KW>;
    for (var n = n0; n < n1; n++) {
        let xplane = (n * p.c_in + ci) * p.h;
        for (var oy = 0u; oy < p.oh; oy++) {
            var rok: array<bool, KYB>;
            var xrow: array<u32, KYB>;
            //#unroll r KYB
            {
                let iy = i32(oy * SH + (ky0 + $r) * DH) - i32(PH);
                rok[$r] = iy >= 0 && iy < i32(p.h) && ky0 + $r < KH;
                xrow[$r] = (xplane + u32(select(0, iy, rok[$r]))) * p.w;
            }
            //#end
            // Two-level summation (per row, then across rows) keeps the f32 error small.
            var racc: array<f32, COB * KYB * KW>;
            for (var xb = 0u; xb < p.xblocks; xb++) {
                let ox0 = xb * PX;
                var g: array<f32, COB * PX>;
                //#unroll j COB
                {
                    let grow = ((n * p.c_out + co[$j]) * p.oh + oy) * p.ow;
                    //#unroll q GS
                    {
                        let ok = ox0 + $q < p.ow;
                        g[$j * PX + $q] = select(0.0, in1[grow + select(0u, ox0 + $q, ok)], ok);
                    }
                    //#end
                    //#unroll u ROWU
                    {
                        let buf = covering_vec4s_in1(grow + ox0);
                        let sh = (grow + ox0) & 3u;
                        //#unroll q PX
                        {
                            let v = shifted(buf[$q], buf[$q + 1u], buf[$q + 2u], buf[$q + 3u], sh);
                            g[$j * PX + $q] = select(0.0, v, ox0 + $q < p.ow);
                        }
                        //#end
                    }
                    //#end
                    //#unroll v PXV
                    {
                        let ok = ox0 + 4u * $v < p.ow;
                        let gv = select(vec4<f32>(), in1_vec4(select(0u, (grow + ox0) / 4u + $v, ok)), ok);
                        g[$j * PX + 4u * $v] = gv.x;
                        g[$j * PX + 4u * $v + 1u] = gv.y;
                        g[$j * PX + 4u * $v + 2u] = gv.z;
                        g[$j * PX + 4u * $v + 3u] = gv.w;
                    }
                    //#end
                }
                //#end
                //#unroll r KYB
                {
                    let seg = input_segment(xrow[$r], rok[$r], ox0);
                    //#unroll j COB
                    wgrad_kernel_row$j$r(&racc, g, seg);
                    //#end
                }
                //#end
            }
            //#unroll k COBKYBKW
            acc[$k] += racc[$k];
            //#end
        }
    }
    //#unroll j COB
    if (cl0 + $j < p.cog) {
        let base = chunk * partial_len() + ((co[$j] * p.cig + cl) * KH + ky0) * KW;
        //#unroll r KYB
        //#unroll kx KW
        if (ky0 + $r < KH) { dst[base + $r * KW + $kx] = acc[($j * KYB + $r) * KW + $kx]; }
        //#end
        //#end
    }
    //#end
}
