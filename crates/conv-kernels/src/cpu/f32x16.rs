//! Sixteen f32 lanes in registers, on either x86 vector extension: one AVX-512 register
//! ([`Zmm`]) or a pair of AVX2 registers ([`YmmPair`]). Register tiles written once over
//! [`F32x16`] compile to either, with the same data layouts (16-float vectors) and the same
//! per-lane arithmetic (fused multiply-adds), so an AVX2 CPU runs the same algorithms as an
//! AVX-512 one with smaller tiles (it has 16 vector registers of 8 lanes, not 32 of 16).
//!
//! Every method is `#[inline(always)]` and `unsafe`: it may only run inside a function compiled
//! with its extension's `#[target_feature]` (`avx512f`, or `avx2,fma`) on a CPU that has it,
//! where the intrinsics inline into plain instructions. [`Isa`] says which extension this CPU
//! runs.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// The x86 vector extension the intrinsics kernels run in (the convolutions' register tiles,
/// the sigmoid), chosen once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F: 32 registers of 16 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 + FMA: 16 registers of 8 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Isa {
    /// The widest extension this CPU has, or `None` (the callers keep their portable code:
    /// im2col + GEMM, auto-vectorised loops). `FOVEA_CPU_ISA=avx2` keeps an AVX-512 CPU on the
    /// AVX2 kernels (for tests and benchmarks; read once per process).
    pub(crate) fn detected() -> Option<Isa> {
        static ISA: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2_only = std::env::var("FOVEA_CPU_ISA").is_ok_and(|v| v == "avx2");
                if std::arch::is_x86_feature_detected!("avx512f") && !avx2_only {
                    return Some(Isa::Avx512);
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    return Some(Isa::Avx2);
                }
            }
            None
        })
    }

    /// Whether this is AVX-512 (the kernels written in its intrinsics alone need it).
    pub(crate) fn is_avx512(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => false,
        }
    }
}

/// f32 lanes of one [`F32x16`] vector.
pub(crate) const LANES: usize = 16;

/// Sixteen f32 lanes held in registers, with the operations register tiles need.
///
/// # Safety
/// Implementations call their extension's intrinsics: every method may only be called from a
/// function compiled with that extension's `#[target_feature]`s, on a CPU that has them.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe trait F32x16: Copy {
    /// What a strided gather needs ready: lane indices and the lane mask.
    type Gather: Copy;

    /// A selection of lanes, for masked stores.
    type Lanes: Copy;

    /// All lanes zero.
    unsafe fn zero() -> Self;

    /// Every lane `v`.
    unsafe fn splat(v: f32) -> Self;

    /// Lanes `p[0..16]` (unaligned).
    unsafe fn load(p: *const f32) -> Self;

    /// Stores the lanes at `p[0..16]` (unaligned).
    unsafe fn store(self, p: *mut f32);

    /// `self · b` per lane.
    unsafe fn mul(self, b: Self) -> Self;

    /// `self − b` per lane.
    unsafe fn sub(self, b: Self) -> Self;

    /// The smaller of `self` and `b` per lane; `b` where either is NaN.
    unsafe fn min(self, b: Self) -> Self;

    /// The larger of `self` and `b` per lane; `b` where either is NaN.
    unsafe fn max(self, b: Self) -> Self;

    /// Each lane rounded to the nearest integer (ties to even).
    unsafe fn round(self) -> Self;

    /// `self · 2^k` per lane, for integral `k` in `[-126, 127]`.
    unsafe fn scale_pow2(self, k: Self) -> Self;

    /// `1 / self` per lane, to within about 2⁻²³ relative (AVX-512: an estimate refined by a
    /// Newton step; AVX2: a division), exactly 1 for 1.
    unsafe fn recip(self) -> Self;

    /// `acc − self · b` per lane, rounded once.
    unsafe fn neg_mul_add(self, b: Self, acc: Self) -> Self;

    /// The lanes `lanes` selects from `p[k]`, zero in the others (whose memory is not read).
    unsafe fn load_first(p: *const f32, lanes: Self::Lanes) -> Self;

    /// `self · b + acc` per lane, rounded once.
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self;

    /// `self + b` per lane.
    unsafe fn add(self, b: Self) -> Self;

    /// The sum of the 16 lanes (a fixed tree: the same order every call).
    unsafe fn reduce_add(self) -> f32;

    /// The first `n` lanes (all 16 from `n = 16` on), for [`F32x16::store_first`].
    unsafe fn first_lanes(n: usize) -> Self::Lanes;

    /// Stores the lanes `lanes` selects at `p[k]`, leaving the others' memory untouched (and
    /// unread).
    unsafe fn store_first(self, p: *mut f32, lanes: Self::Lanes);

    /// The even and the odd lanes of the 32 values `self` (the first 16) then `hi`, each in
    /// order: a row's 2×2 windows split into their left and right columns.
    unsafe fn even_odd(self, hi: Self) -> (Self, Self);

    /// `(best, at)` after scanning `v` (found at `t`): per lane, `v` and `t` where `v` beats
    /// `self` (larger, or NaN over a non-NaN), else `self` and `at`. `at` and `t` carry u32
    /// bits (positions), moved unchanged.
    unsafe fn keep_first_max(self, at: Self, v: Self, t: Self) -> (Self, Self);

    /// Each lane's bits read as a u32 plus `k` (wrapping), for positions carried in lanes.
    unsafe fn add_bits(self, k: u32) -> Self;

    /// Eight positions of 16 planes as 8 vectors: lane `l` of vector `i` is `p[l·stride + i]`
    /// (every lane read; `15·stride` must fit i32). Transposes a gradient's channel planes to
    /// channels-innermost.
    unsafe fn transpose_8(p: *const f32, stride: usize) -> [Self; 8];

    /// Prepares [`F32x16::gather`] of lanes `k < n` at `p + k·step` (`15·step` must fit i32).
    unsafe fn gather_plan(step: i32, n: usize) -> Self::Gather;

    /// Lane `k` = `p[k·step]` for the lanes the plan keeps, zero for the others (which are not
    /// read).
    unsafe fn gather(p: *const f32, plan: Self::Gather) -> Self;
}

/// One AVX-512 register (AVX-512F).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Zmm(__m512);

// SAFETY: every method is only AVX-512F intrinsics; the trait's contract puts them under it.
#[cfg(target_arch = "x86_64")]
unsafe impl F32x16 for Zmm {
    type Gather = (__m512i, __mmask16);
    type Lanes = __mmask16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        Self(unsafe { _mm512_setzero_ps() })
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        Self(unsafe { _mm512_set1_ps(v) })
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Self(unsafe { _mm512_loadu_ps(p) })
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm512_storeu_ps(p, self.0) }
    }

    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        Self(unsafe { _mm512_mul_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        Self(unsafe { _mm512_sub_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn min(self, b: Self) -> Self {
        Self(unsafe { _mm512_min_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        Self(unsafe { _mm512_max_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn round(self) -> Self {
        // Round to nearest, exceptions suppressed.
        Self(unsafe { _mm512_roundscale_ps::<0x08>(self.0) })
    }

    #[inline(always)]
    unsafe fn scale_pow2(self, k: Self) -> Self {
        Self(unsafe { _mm512_scalef_ps(self.0, k.0) })
    }

    #[inline(always)]
    unsafe fn recip(self) -> Self {
        unsafe {
            let q = _mm512_rcp14_ps(self.0);
            Self(_mm512_mul_ps(
                q,
                _mm512_fnmadd_ps(self.0, q, _mm512_set1_ps(2.0)),
            ))
        }
    }

    #[inline(always)]
    unsafe fn neg_mul_add(self, b: Self, acc: Self) -> Self {
        Self(unsafe { _mm512_fnmadd_ps(self.0, b.0, acc.0) })
    }

    #[inline(always)]
    unsafe fn load_first(p: *const f32, lanes: Self::Lanes) -> Self {
        Self(unsafe { _mm512_maskz_loadu_ps(lanes, p) })
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        Self(unsafe { _mm512_fmadd_ps(self.0, b.0, acc.0) })
    }

    #[inline(always)]
    unsafe fn first_lanes(n: usize) -> Self::Lanes {
        ((1u32 << n.min(LANES)) - 1) as __mmask16
    }

    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, lanes: Self::Lanes) {
        unsafe { _mm512_mask_storeu_ps(p, lanes, self.0) }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        Self(unsafe { _mm512_add_ps(self.0, b.0) })
    }

    #[inline(always)]
    unsafe fn reduce_add(self) -> f32 {
        unsafe { _mm512_reduce_add_ps(self.0) }
    }

    #[inline(always)]
    unsafe fn transpose_8(p: *const f32, stride: usize) -> [Self; 8] {
        // One gather per position (fast enough on the Intel CPUs that have AVX-512).
        unsafe {
            let plan = Self::gather_plan(stride as i32, LANES);
            let mut out = [Self::zero(); 8];
            for (i, v) in out.iter_mut().enumerate() {
                *v = Self::gather(p.add(i), plan);
            }
            out
        }
    }

    #[inline(always)]
    unsafe fn even_odd(self, hi: Self) -> (Self, Self) {
        unsafe {
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            (
                Self(_mm512_permutex2var_ps(self.0, even, hi.0)),
                Self(_mm512_permutex2var_ps(self.0, odd, hi.0)),
            )
        }
    }

    #[inline(always)]
    unsafe fn keep_first_max(self, at: Self, v: Self, t: Self) -> (Self, Self) {
        unsafe {
            let nan_v = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v.0, v.0);
            let nan_best = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0);
            let wins = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v.0, self.0) | (nan_v & !nan_best);
            (
                Self(_mm512_mask_blend_ps(wins, self.0, v.0)),
                Self(_mm512_mask_blend_ps(wins, at.0, t.0)),
            )
        }
    }

    #[inline(always)]
    unsafe fn add_bits(self, k: u32) -> Self {
        unsafe {
            let sum = _mm512_add_epi32(_mm512_castps_si512(self.0), _mm512_set1_epi32(k as i32));
            Self(_mm512_castsi512_ps(sum))
        }
    }

    #[inline(always)]
    unsafe fn gather_plan(step: i32, n: usize) -> Self::Gather {
        unsafe {
            let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            let mask = Self::first_lanes(n);
            (_mm512_mullo_epi32(lanes, _mm512_set1_epi32(step)), mask)
        }
    }

    #[inline(always)]
    unsafe fn gather(p: *const f32, (index, mask): Self::Gather) -> Self {
        Self(unsafe { _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, index, p.cast()) })
    }
}

/// Two AVX2 registers, lanes 0–7 and 8–15 (AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct YmmPair([__m256; 2]);

// SAFETY: every method is only AVX, AVX2 and FMA intrinsics; the trait's contract puts them
// under those features.
#[cfg(target_arch = "x86_64")]
unsafe impl F32x16 for YmmPair {
    type Gather = ([__m256i; 2], [__m256; 2]);
    type Lanes = [__m256i; 2];

    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { Self([_mm256_setzero_ps(); 2]) }
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        unsafe { Self([_mm256_set1_ps(v); 2]) }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Self([_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]) }
    }

    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe {
            _mm256_storeu_ps(p, self.0[0]);
            _mm256_storeu_ps(p.add(8), self.0[1]);
        }
    }

    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        unsafe {
            Self([
                _mm256_mul_ps(self.0[0], b.0[0]),
                _mm256_mul_ps(self.0[1], b.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        unsafe {
            Self([
                _mm256_sub_ps(self.0[0], b.0[0]),
                _mm256_sub_ps(self.0[1], b.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn min(self, b: Self) -> Self {
        unsafe {
            Self([
                _mm256_min_ps(self.0[0], b.0[0]),
                _mm256_min_ps(self.0[1], b.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        unsafe {
            Self([
                _mm256_max_ps(self.0[0], b.0[0]),
                _mm256_max_ps(self.0[1], b.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn round(self) -> Self {
        // Round to nearest, exceptions suppressed.
        unsafe {
            Self([
                _mm256_round_ps::<0x08>(self.0[0]),
                _mm256_round_ps::<0x08>(self.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn scale_pow2(self, k: Self) -> Self {
        // 2^k built in the exponent bits (k + 127 in 1..=254 for k in [-126, 127]).
        unsafe {
            let pow2 = |k: __m256| {
                let e = _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
            };
            Self([
                _mm256_mul_ps(self.0[0], pow2(k.0[0])),
                _mm256_mul_ps(self.0[1], pow2(k.0[1])),
            ])
        }
    }

    #[inline(always)]
    unsafe fn recip(self) -> Self {
        // A division: the 12-bit estimate refined by Newton steps stops one ulp short of 1 for
        // 1 (a saturated sigmoid must be exactly 1).
        unsafe {
            let one = _mm256_set1_ps(1.0);
            Self([_mm256_div_ps(one, self.0[0]), _mm256_div_ps(one, self.0[1])])
        }
    }

    #[inline(always)]
    unsafe fn neg_mul_add(self, b: Self, acc: Self) -> Self {
        unsafe {
            Self([
                _mm256_fnmadd_ps(self.0[0], b.0[0], acc.0[0]),
                _mm256_fnmadd_ps(self.0[1], b.0[1], acc.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn load_first(p: *const f32, [m0, m1]: Self::Lanes) -> Self {
        unsafe { Self([_mm256_maskload_ps(p, m0), _mm256_maskload_ps(p.add(8), m1)]) }
    }

    #[inline(always)]
    unsafe fn first_lanes(n: usize) -> Self::Lanes {
        // A lane is stored where its mask's sign bit is set.
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let n = _mm256_set1_epi32(n.min(LANES) as i32);
            [
                _mm256_cmpgt_epi32(n, lanes),
                _mm256_cmpgt_epi32(n, _mm256_add_epi32(lanes, _mm256_set1_epi32(8))),
            ]
        }
    }

    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, [m0, m1]: Self::Lanes) {
        unsafe {
            _mm256_maskstore_ps(p, m0, self.0[0]);
            _mm256_maskstore_ps(p.add(8), m1, self.0[1]);
        }
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        unsafe {
            Self([
                _mm256_fmadd_ps(self.0[0], b.0[0], acc.0[0]),
                _mm256_fmadd_ps(self.0[1], b.0[1], acc.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        unsafe {
            Self([
                _mm256_add_ps(self.0[0], b.0[0]),
                _mm256_add_ps(self.0[1], b.0[1]),
            ])
        }
    }

    #[inline(always)]
    unsafe fn reduce_add(self) -> f32 {
        unsafe {
            let v = _mm256_add_ps(self.0[0], self.0[1]);
            let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
            _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps::<1>(d, d)))
        }
    }

    #[inline(always)]
    unsafe fn transpose_8(p: *const f32, stride: usize) -> [Self; 8] {
        // Two 8×8 transposes in registers (unpack, shuffle, swap of 128-bit halves) instead of
        // gathers, which were most of the transposition's time on an AMD EPYC (resnet-small's
        // `transpose_group` 3.8 % of a step with gathers alone, 2.5 % with this).
        unsafe {
            let mut out = [Self::zero(); 8];
            for h in 0..2 {
                let mut r = [_mm256_setzero_ps(); 8];
                for (k, v) in r.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(p.add((8 * h + k) * stride));
                }
                let mut t = [_mm256_setzero_ps(); 8];
                for k in 0..4 {
                    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
                    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
                }
                let mut q = [_mm256_setzero_ps(); 8];
                for k in 0..2 {
                    let (a, b) = (4 * k, 4 * k + 2);
                    q[4 * k] = _mm256_shuffle_ps::<0x44>(t[a], t[b]);
                    q[4 * k + 1] = _mm256_shuffle_ps::<0xEE>(t[a], t[b]);
                    q[4 * k + 2] = _mm256_shuffle_ps::<0x44>(t[a + 1], t[b + 1]);
                    q[4 * k + 3] = _mm256_shuffle_ps::<0xEE>(t[a + 1], t[b + 1]);
                }
                for i in 0..4 {
                    out[i].0[h] = _mm256_permute2f128_ps::<0x20>(q[i], q[4 + i]);
                    out[4 + i].0[h] = _mm256_permute2f128_ps::<0x31>(q[i], q[4 + i]);
                }
            }
            out
        }
    }

    #[inline(always)]
    unsafe fn even_odd(self, hi: Self) -> (Self, Self) {
        // Within each 128-bit half, a shuffle takes two lanes of each source; the 64-bit
        // permute then puts the halves in order. (No closures or inner functions here: they
        // would not inherit the caller's target features, and the intrinsics would become calls.)
        unsafe {
            let [a, b] = [self.0, hi.0];
            let mut halves = [[_mm256_setzero_ps(); 2]; 2];
            for (h, [lo, up]) in [a, b].into_iter().enumerate() {
                let even = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(lo, up));
                let odd = _mm256_castps_pd(_mm256_shuffle_ps::<0b11_01_11_01>(lo, up));
                halves[0][h] = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(even));
                halves[1][h] = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(odd));
            }
            (Self(halves[0]), Self(halves[1]))
        }
    }

    #[inline(always)]
    unsafe fn keep_first_max(self, at: Self, v: Self, t: Self) -> (Self, Self) {
        unsafe {
            let mut out = (self, at);
            for h in 0..2 {
                let (b, x) = (self.0[h], v.0[h]);
                let nan_v = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
                let num_best = _mm256_cmp_ps::<_CMP_ORD_Q>(b, b);
                let wins = _mm256_or_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(x, b),
                    _mm256_and_ps(nan_v, num_best),
                );
                out.0.0[h] = _mm256_blendv_ps(b, x, wins);
                out.1.0[h] = _mm256_blendv_ps(at.0[h], t.0[h], wins);
            }
            out
        }
    }

    #[inline(always)]
    unsafe fn add_bits(self, k: u32) -> Self {
        unsafe {
            let k = _mm256_set1_epi32(k as i32);
            let mut out = self;
            for v in &mut out.0 {
                *v = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(*v), k));
            }
            out
        }
    }

    #[inline(always)]
    unsafe fn gather_plan(step: i32, n: usize) -> Self::Gather {
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let low = _mm256_mullo_epi32(lanes, _mm256_set1_epi32(step));
            let high = _mm256_add_epi32(low, _mm256_set1_epi32(8 * step));
            // A lane is gathered where its mask's sign bit is set.
            let [m0, m1] = Self::first_lanes(n);
            (
                [low, high],
                [_mm256_castsi256_ps(m0), _mm256_castsi256_ps(m1)],
            )
        }
    }

    #[inline(always)]
    unsafe fn gather(p: *const f32, ([low, high], [m0, m1]): Self::Gather) -> Self {
        unsafe {
            let z = _mm256_setzero_ps();
            Self([
                _mm256_mask_i32gather_ps::<4>(z, p, low, m0),
                _mm256_mask_i32gather_ps::<4>(z, p, high, m1),
            ])
        }
    }
}
