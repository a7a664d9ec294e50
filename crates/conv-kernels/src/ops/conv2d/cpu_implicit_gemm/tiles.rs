//! The implicit GEMM's register tiles, written once over [`F32x16`] and compiled for each x86
//! vector extension: AVX-512 (one register per 16-lane vector, 32 registers) and AVX2 + FMA
//! (two registers per vector, 16 registers), each with its own tile sizes. One instance per
//! tile size: accumulators indexed by constants stay in registers.
//!
//! The [`Isa`] methods here are the tiles' sizes and entry points, each dispatching to the
//! instance of the requested size.

use super::{ChunkPlanes, PositionGrid};
#[cfg(target_arch = "x86_64")]
use crate::cpu::f32x16::{F32x16, YmmPair, Zmm};
use crate::cpu::f32x16::{Isa, LANES};

impl Isa {
    /// Output channels of a forward tile at most: the kernel is packed in blocks of this many.
    pub(crate) fn forward_channels(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 8,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => 6,
        }
    }

    /// Accumulator vectors of a forward tile (channels × position vectors), leaving registers
    /// for the loaded input vectors and the broadcast weight.
    pub(crate) fn forward_accumulators(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 24,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => 6,
        }
    }

    /// Output channels × taps of a lane-sum weight-gradient tile.
    pub(crate) fn lane_sum_tile(self) -> (usize, usize) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (4, 6),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (3, 2),
        }
    }

    /// Channel vectors of a channel-vector weight-gradient tile at most: two share each
    /// broadcast input value (AVX-512); one loads half the gradient per product and leaves
    /// registers for two kernel rows (AVX2, whose gradient loads come from L2).
    pub(crate) fn channel_vectors_per_tile(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 2,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => 1,
        }
    }

    /// Accumulator vectors of a channel-vector weight-gradient tile (vectors × taps).
    pub(crate) fn channel_vector_accumulators(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 24,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => 6,
        }
    }

    /// `out[c][j·16..]` (rows `t.out_stride` apart) = `Σ_t w[t·w_stride + c] ·
    /// x[offs[t] + j·16..]` for `c < cb`, `j < nv`: each block of `t.tap_block` taps summed
    /// from zero, then added to the blocks before it in order.
    ///
    /// # Safety
    /// The CPU has this extension; `cb ≤` [`Isa::forward_channels`], `cb · nv ≤`
    /// [`Isa::forward_accumulators`], `nv ≤ 4`; `x` holds `offs[t] + nv·16` floats for every
    /// `t`, `w` holds `(offs.len() − 1)·w_stride + cb`, `out` holds `(cb − 1)·out_stride +
    /// nv·16`.
    pub(super) unsafe fn forward_tile(
        self,
        size: [usize; 2],
        t: &ForwardTile<'_>,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => avx512::forward_tile(size, t, out),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => avx2::forward_tile(size, t, out),
            }
        }
    }

    /// `out[c·taps + t] = Σ_images Σ_p gy[co_row + c·flat + p] · x[plane0 + offs[t] + p]` for
    /// `c < cb`, `t < nt` (`size = [cb, nt]`), the 16 lanes of each sum reduced at the end.
    ///
    /// # Safety
    /// The CPU has this extension; `size` within [`Isa::lane_sum_tile`]; for every image,
    /// `plane0 + offs[t] + flat ≤ padded` and `co_row + cb·flat ≤ gy_len`; `out` holds
    /// `(cb − 1)·taps + nt` floats.
    pub(super) unsafe fn lane_sum_tile_run(
        self,
        size: [usize; 2],
        t: &LaneSumTile<'_>,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => avx512::lane_sum_tile(size, t, out),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => avx2::lane_sum_tile(size, t, out),
            }
        }
    }

    /// `acc[(v·nr + r)·kw + kx][l] = Σ_images Σ_p gyt[gyt0 + p·cop + v·16 + l] ·
    /// x[plane0 + rows[r] + kx_steps[kx] + p]` for `v < cv`, `r < nr`, `kx < kw`
    /// (`size = [cv, kw, nr]`), `p` over the grid's flat positions: one chain per sum, over the
    /// chunk's images and positions in order.
    ///
    /// # Safety
    /// The CPU has this extension; `cv·nr·kw ≤` [`Isa::channel_vector_accumulators`]; for every
    /// image, `plane0 + rows[r] + kx_steps[kx] + positions ≤ padded` and
    /// `gyt0 + (positions − 1)·cop + cv·16 ≤ gyt_len`.
    pub(super) unsafe fn channel_vector_tile(
        self,
        size: [usize; 3],
        t: &ChannelVectorTile<'_>,
        acc: &mut [[f32; LANES]; 24],
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => avx512::channel_vector_tile(size, t, acc),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => avx2::channel_vector_tile(size, t, acc),
            }
        }
    }

    /// `dst[(oy·row + ox)·cop + cl] = src[cl·oh·ow + oy·ow + ox]` for `cl < cog`, zero for
    /// `cog ≤ cl < cop` and for `ow ≤ ox < row`: eight consecutive positions of 16 channels
    /// transposed at a time (the last eight of the plane overlapping the block before), else,
    /// for a group's last channels short of 16 or planes of fewer than 8 positions, one masked
    /// 16-channel gather per position.
    ///
    /// # Safety
    /// The CPU has this extension; `src` holds `cog·oh·ow` floats, `dst` `oh·row·cop`; `cop` is
    /// a multiple of 16 and at least `cog`; `row ≥ ow`.
    pub(super) unsafe fn transpose_group(
        self,
        src: &[f32],
        [oh, ow, row]: [usize; 3],
        cog: usize,
        cop: usize,
        dst: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => avx512::transpose_group(src, [oh, ow, row], cog, cop, dst),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => avx2::transpose_group(src, [oh, ow, row], cog, cop, dst),
            }
        }
    }
}

/// What a forward tile reads: the planes from its first position, its taps' offsets into
/// them, the packed weights from its first tap and channel (`w_stride` apart per tap), the
/// distance between its output rows, and the taps each partial sum runs over (the blocks'
/// sums are then added in order).
pub(super) struct ForwardTile<'a> {
    pub(super) x: &'a [f32],
    pub(super) offs: &'a [usize],
    pub(super) w: &'a [f32],
    pub(super) w_stride: usize,
    pub(super) out_stride: usize,
    pub(super) tap_block: usize,
}

/// What a lane-sum weight-gradient tile reads: the chunk, the flat positions per channel, the
/// group's first plane, its taps' offsets, its first output channel's gradient row and the
/// taps per output channel (the output's row length).
pub(super) struct LaneSumTile<'a> {
    pub(super) chunk: &'a ChunkPlanes<'a>,
    pub(super) flat: usize,
    pub(super) plane0: usize,
    pub(super) offs: &'a [usize],
    pub(super) co_row: usize,
    pub(super) taps: usize,
}

/// What a channel-vector weight-gradient tile reads: the chunk, its positions, the group's
/// first plane and first transposed-gradient column, its kernel rows' starts and the column
/// steps within a row.
pub(super) struct ChannelVectorTile<'a> {
    pub(super) chunk: &'a ChunkPlanes<'a>,
    pub(super) grid: &'a PositionGrid,
    pub(super) plane0: usize,
    pub(super) gyt0: usize,
    pub(super) rows: &'a [usize],
    pub(super) kx_steps: &'a [usize],
}

/// Generates one extension's entry points: each compiled with its `#[target_feature]`s and
/// matching the requested size against the instances listed.
macro_rules! isa_tiles {
    (
        $(#[$doc:meta])*
        mod $isa:ident: $vector:ident, $features:literal;
        forward: $(($fc:literal: $($fv:literal)*))*;
        lane_sums: $(($lc:literal: $($lt:literal)*))*;
        channel_vectors: $(($cc:literal, $ck:literal: $($cr:literal)*))*;
        channel_vector_position_pairs: $pairs:literal;
    ) => {
        $(#[$doc])*
        mod $isa {
            use super::{ChannelVectorTile, ForwardTile, LANES, LaneSumTile};

            #[target_feature(enable = $features)]
            pub(super) unsafe fn forward_tile(size: [usize; 2], t: &ForwardTile<'_>, out: &mut [f32]) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    match size {
                        $($([$fc, $fv] => forward::<$fc, $fv>(t, out),)*)*
                        _ => unreachable!("forward tile {size:?} not instantiated"),
                    }
                }
            }

            #[target_feature(enable = $features)]
            #[inline(never)]
            unsafe fn forward<const CB: usize, const NV: usize>(t: &ForwardTile<'_>, out: &mut [f32]) {
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::forward::<super::$vector, CB, NV>(t, out) }
            }

            #[target_feature(enable = $features)]
            pub(super) unsafe fn lane_sum_tile(size: [usize; 2], t: &LaneSumTile<'_>, out: &mut [f32]) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    match size {
                        $($([$lc, $lt] => lane_sums::<$lc, $lt>(t, out),)*)*
                        _ => unreachable!("lane-sum tile {size:?} not instantiated"),
                    }
                }
            }

            #[target_feature(enable = $features)]
            #[inline(never)]
            unsafe fn lane_sums<const CB: usize, const NT: usize>(t: &LaneSumTile<'_>, out: &mut [f32]) {
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::lane_sums::<super::$vector, CB, NT>(t, out) }
            }

            #[target_feature(enable = $features)]
            pub(super) unsafe fn channel_vector_tile(
                size: [usize; 3],
                t: &ChannelVectorTile<'_>,
                acc: &mut [[f32; LANES]; 24],
            ) {
                // Unit column steps (stride 1) become constant displacements: one pointer per
                // row instead of one per tap, which the 24-tap tiles need to stay in registers.
                let unit = t.kx_steps.iter().enumerate().all(|(kx, &s)| s == kx);
                // SAFETY: forwarded from the caller.
                unsafe {
                    match (size, unit) {
                        $($(
                            ([$cc, $ck, $cr], true) => channel_vectors::<$cc, $ck, $cr, true, $pairs>(t, acc),
                            ([$cc, $ck, $cr], false) => channel_vectors::<$cc, $ck, $cr, false, false>(t, acc),
                        )*)*
                        _ => unreachable!("channel-vector tile {size:?} not instantiated"),
                    }
                }
            }

            #[target_feature(enable = $features)]
            #[inline(never)]
            unsafe fn channel_vectors<
                const CV: usize,
                const KW: usize,
                const NR: usize,
                const UNIT: bool,
                const PAIRS: bool,
            >(
                t: &ChannelVectorTile<'_>,
                acc: &mut [[f32; LANES]; 24],
            ) {
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::channel_vectors::<super::$vector, CV, KW, NR, UNIT, PAIRS>(t, acc) }
            }

            #[target_feature(enable = $features)]
            pub(super) unsafe fn transpose_group(
                src: &[f32],
                dims: [usize; 3],
                cog: usize,
                cop: usize,
                dst: &mut [f32],
            ) {
                // SAFETY: this function has the extension; the rest is the caller's contract.
                unsafe { super::transpose_group::<super::$vector>(src, dims, cog, cop, dst) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
isa_tiles! {
    /// The tiles in AVX-512: 24 accumulators of 16 lanes.
    mod avx512: Zmm, "avx512f";
    forward: (1: 1 2 3 4) (2: 1 2 3 4) (3: 1 2 3 4) (4: 1 2 3 4) (5: 1 2 3 4) (6: 1 2 3 4)
        (7: 1 2 3) (8: 1 2 3);
    lane_sums: (1: 1 2 3 4 5 6) (2: 1 2 3 4 5 6) (3: 1 2 3 4 5 6) (4: 1 2 3 4 5 6);
    channel_vectors: (1, 3: 1 2 3 4 5 6 7 8) (2, 3: 1 2 3 4) (1, 5: 1 2 3 4) (2, 5: 1 2);
    channel_vector_position_pairs: true;
}

#[cfg(target_arch = "x86_64")]
isa_tiles! {
    /// The tiles in AVX2 + FMA: 6 accumulators of 16 lanes (12 registers) or fewer.
    mod avx2: YmmPair, "avx2,fma";
    forward: (1: 1 2 3 4) (2: 1 2 3) (3: 1 2) (4: 1) (5: 1) (6: 1);
    lane_sums: (1: 1 2) (2: 1 2) (3: 1 2);
    channel_vectors: (1, 3: 1 2) (1, 5: 1);
    // Pairs need 4 more broadcast registers than AVX2 has free: they spill (`conv_rate` with
    // FOVEA_CPU_ISA=avx2, 3×3 stride-1 weight gradients 3.7-4.7 ms -> 6.8-8.3 ms).
    channel_vector_position_pairs: false;
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn forward<V: F32x16, const CB: usize, const NV: usize>(
    t: &ForwardTile<'_>,
    out: &mut [f32],
) {
    let &ForwardTile {
        x,
        offs,
        w,
        w_stride,
        out_stride,
        tap_block,
    } = t;
    debug_assert!(offs.iter().all(|&o| o + NV * LANES <= x.len()));
    debug_assert!(offs.is_empty() || w.len() >= (offs.len() - 1) * w_stride + CB);
    debug_assert!(out.len() >= (CB - 1) * out_stride + NV * LANES);
    debug_assert!(tap_block > 0);
    // SAFETY: in bounds by the caller's contract (checked in debug builds above); the caller
    // runs this with `V`'s extension.
    unsafe {
        let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
        for (b, block) in offs.chunks(tap_block).enumerate() {
            let mut acc = [[V::zero(); NV]; CB];
            let wp = w.as_ptr().add(b * tap_block * w_stride);
            for (t, &off) in block.iter().enumerate() {
                let src = xp.add(off);
                let wt = wp.add(t * w_stride);
                if CB < NV {
                    // Fewer channels than vectors: the broadcasts stay in registers and each
                    // input vector is used as it is loaded (AVX2's 2 × 3 tile otherwise holds
                    // three input vectors beside its accumulators and spills them).
                    let mut wv = [V::zero(); CB];
                    for (c, v) in wv.iter_mut().enumerate() {
                        *v = V::splat(*wt.add(c));
                    }
                    for j in 0..NV {
                        let xv = V::load(src.add(j * LANES));
                        for (a, &w) in acc.iter_mut().zip(&wv) {
                            a[j] = w.mul_add(xv, a[j]);
                        }
                    }
                } else {
                    let mut xv = [V::zero(); NV];
                    for (j, v) in xv.iter_mut().enumerate() {
                        *v = V::load(src.add(j * LANES));
                    }
                    for (c, a) in acc.iter_mut().enumerate() {
                        let wv = V::splat(*wt.add(c));
                        for (a, &v) in a.iter_mut().zip(&xv) {
                            *a = wv.mul_add(v, *a);
                        }
                    }
                }
            }
            for (c, a) in acc.iter().enumerate() {
                for (j, v) in a.iter().enumerate() {
                    let at = op.add(c * out_stride + j * LANES);
                    let v = if b > 0 { V::load(at).add(*v) } else { *v };
                    v.store(at);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn lane_sums<V: F32x16, const CB: usize, const NT: usize>(
    t: &LaneSumTile<'_>,
    out: &mut [f32],
) {
    let &LaneSumTile {
        chunk,
        flat,
        plane0,
        offs,
        co_row,
        taps,
    } = t;
    debug_assert!(offs.len() == NT);
    debug_assert!(chunk.xpads.len() >= chunk.images * chunk.padded);
    debug_assert!(chunk.gys.len() >= chunk.images * chunk.gy_len);
    debug_assert!(offs.iter().all(|&o| plane0 + o + flat <= chunk.padded));
    debug_assert!(co_row + CB * flat <= chunk.gy_len);
    debug_assert!(out.len() >= (CB - 1) * taps + NT);
    // SAFETY: in bounds by the caller's contract (checked in debug builds above); the caller
    // runs this with `V`'s extension.
    unsafe {
        let mut acc = [[V::zero(); NT]; CB];
        let mut offs_t = [0usize; NT];
        offs_t.copy_from_slice(offs);
        for img in 0..chunk.images {
            let xp = chunk.xpads.as_ptr().add(img * chunk.padded + plane0);
            let gp = chunk.gys.as_ptr().add(img * chunk.gy_len + co_row);
            for p in (0..flat).step_by(LANES) {
                let mut gv = [V::zero(); CB];
                for (c, v) in gv.iter_mut().enumerate() {
                    *v = V::load(gp.add(c * flat + p));
                }
                for (t, &off) in offs_t.iter().enumerate() {
                    let xv = V::load(xp.add(off + p));
                    for (a, &g) in acc.iter_mut().zip(&gv) {
                        a[t] = g.mul_add(xv, a[t]);
                    }
                }
            }
        }
        for (c, a) in acc.iter().enumerate() {
            for (t, v) in a.iter().enumerate() {
                out[c * taps + t] = v.reduce_add();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn channel_vectors<
    V: F32x16,
    const CV: usize,
    const KW: usize,
    const NR: usize,
    const UNIT: bool,
    const PAIRS: bool,
>(
    t: &ChannelVectorTile<'_>,
    acc: &mut [[f32; LANES]; 24],
) {
    let &ChannelVectorTile {
        chunk,
        grid,
        plane0,
        gyt0,
        rows,
        kx_steps,
    } = t;
    let (positions, cop) = (grid.positions, grid.cop);
    debug_assert!(rows.len() == NR && kx_steps.len() == KW && CV * NR * KW <= acc.len());
    debug_assert!(chunk.xpads.len() >= chunk.images * chunk.padded);
    debug_assert!(chunk.gys.len() >= chunk.images * chunk.gy_len);
    debug_assert!(
        rows.iter()
            .all(|&o| plane0 + o + kx_steps[KW - 1] + positions <= chunk.padded)
    );
    debug_assert!(gyt0 + (positions - 1) * cop + CV * LANES <= chunk.gy_len);
    // SAFETY: in bounds by the caller's contract (checked in debug builds above); the caller
    // runs this with `V`'s extension.
    unsafe {
        let mut a = [[[V::zero(); KW]; NR]; CV];
        for img in 0..chunk.images {
            let x0 = chunk.xpads.as_ptr().add(img * chunk.padded + plane0);
            // Stride 1: one pointer per row, the taps at constant displacements from it.
            let mut taps = [[x0; KW]; NR];
            for (tr, &o) in taps.iter_mut().zip(rows) {
                for (kx, (t, &step)) in tr.iter_mut().zip(kx_steps).enumerate() {
                    *t = if UNIT { x0.add(o) } else { x0.add(o + step) };
                    if UNIT {
                        debug_assert_eq!(step, kx);
                    }
                }
            }
            let mut gp = chunk.gys.as_ptr().add(img * chunk.gy_len + gyt0);
            let mut first = 0;
            if UNIT && PAIRS {
                // Positions p and p + 1 together: their taps of a kernel row read the KW + 1
                // values x[p..=p + KW], each broadcast once for both (KW + 1 broadcasts for
                // 2·KW products instead of 2·KW). Each sum still takes p before p + 1.
                while first + 2 <= positions {
                    let (mut g0, mut g1) = ([V::zero(); CV], [V::zero(); CV]);
                    for v in 0..CV {
                        g0[v] = V::load(gp.add(v * LANES));
                        g1[v] = V::load(gp.add(cop + v * LANES));
                    }
                    gp = gp.add(2 * cop);
                    for (r, tr) in taps.iter().enumerate() {
                        let mut xb = [V::zero(); MAX_KW + 1];
                        for (j, b) in xb.iter_mut().enumerate().take(KW + 1) {
                            *b = V::splat(*tr[0].add(first + j));
                        }
                        for (av, (&v0, &v1)) in a.iter_mut().zip(g0.iter().zip(&g1)) {
                            for kx in 0..KW {
                                av[r][kx] = v0.mul_add(xb[kx], av[r][kx]);
                                av[r][kx] = v1.mul_add(xb[kx + 1], av[r][kx]);
                            }
                        }
                    }
                    first += 2;
                }
            }
            for p in first..positions {
                let mut g = [V::zero(); CV];
                for (v, gv) in g.iter_mut().enumerate() {
                    *gv = V::load(gp.add(v * LANES));
                }
                gp = gp.add(cop);
                for (r, tr) in taps.iter().enumerate() {
                    for (kx, &tp) in tr.iter().enumerate() {
                        let at = if UNIT { p + kx } else { p };
                        let xb = V::splat(*tp.add(at));
                        for (av, &gv) in a.iter_mut().zip(&g) {
                            av[r][kx] = gv.mul_add(xb, av[r][kx]);
                        }
                    }
                }
            }
        }
        for (v, av) in a.iter().enumerate() {
            for (r, ar) in av.iter().enumerate() {
                for (kx, &value) in ar.iter().enumerate() {
                    value.store(acc[(v * NR + r) * KW + kx].as_mut_ptr());
                }
            }
        }
    }
}

/// Kernel width of a channel-vector tile at most (the instances are 3 and 5 wide).
const MAX_KW: usize = 5;

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose_group<V: F32x16>(
    src: &[f32],
    [oh, ow, row]: [usize; 3],
    cog: usize,
    cop: usize,
    dst: &mut [f32],
) {
    let ohw = oh * ow;
    debug_assert!(src.len() >= cog * ohw && dst.len() >= oh * row * cop);
    debug_assert!(cop.is_multiple_of(LANES) && cop >= cog && row >= ow);
    let step = i32::try_from(ohw).expect("a plane of fewer than 2^31 / 16 values");
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    for c0 in (0..cop).step_by(LANES) {
        let n = cog.saturating_sub(c0).min(LANES);
        // SAFETY: the caller runs this with `V`'s extension. A transposed block (`n = 16`:
        // `c0 + 16 ≤ cog`) reads `src[(c0 + k)·ohw + p]` for `k < 16` and its eight positions
        // `start ≤ p < start + 8 ≤ ohw`; the gathered lanes `k < n` read
        // `src[(c0 + k)·ohw + oy·ow + ox]` with `c0 + k < cog`, `ox < ow`; each store writes 16
        // floats of row `oy·row + ox` (`oy < oh`, `ox < row`) at column `c0 ≤ cop − 16`.
        unsafe {
            if n == LANES && ohw >= 8 {
                // Whole groups of 16 channels: blocks of 8 consecutive positions of the
                // planes (a block may run from one image row into the next), the last block
                // overlapping the one before it, so no position needs a gather (on AVX2 two
                // per position, slow on AMD; every position of a 7-wide row took them).
                let mut start = 0;
                loop {
                    let block = V::transpose_8(sp.add(c0 * ohw + start), ohw);
                    let (mut oy, mut ox) = (start / ow, start % ow);
                    for v in &block {
                        v.store(dp.add((oy * row + ox) * cop + c0));
                        ox += 1;
                        if ox == ow {
                            (oy, ox) = (oy + 1, 0);
                        }
                    }
                    if start + 8 == ohw {
                        break;
                    }
                    start = (start + 8).min(ohw - 8);
                }
                for oy in 0..oh {
                    for ox in ow..row {
                        V::zero().store(dp.add((oy * row + ox) * cop + c0));
                    }
                }
                continue;
            }
            let plan = V::gather_plan(step, n);
            for oy in 0..oh {
                for ox in 0..row {
                    let v = if ox < ow && n > 0 {
                        V::gather(sp.add(c0 * ohw + oy * ow + ox), plan)
                    } else {
                        V::zero()
                    };
                    v.store(dp.add((oy * row + ox) * cop + c0));
                }
            }
        }
    }
}
