//! A seeded random-number generator that yields the same numbers on every platform and run.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// Deterministic RNG (ChaCha8) with portable uniform and normal sampling and a saveable position.
#[derive(Clone, Debug)]
pub struct SeededRng {
    seed: u64,
    inner: ChaCha8Rng,
}

/// Where a [`SeededRng`] stands: enough to recreate it exactly (for checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RngState {
    /// The seed it was created with.
    pub seed: u64,
    /// How many 32-bit words it has produced.
    pub word_pos: u128,
}

impl SeededRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The position to save in a checkpoint.
    pub fn state(&self) -> RngState {
        RngState {
            seed: self.seed,
            word_pos: self.inner.get_word_pos(),
        }
    }

    /// Recreates a generator at a saved position.
    pub fn from_state(state: RngState) -> Self {
        let mut rng = Self::new(state.seed);
        rng.inner.set_word_pos(state.word_pos);
        rng
    }

    /// The next raw 32-bit word.
    pub fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// The next raw 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform float in `[0, 1)` with 24 random bits.
    pub fn uniform01(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform float in `[low, high)`.
    pub fn uniform(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.uniform01()
    }

    /// A standard normal sample (Box–Muller, computed in f64 for portability of the result).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64);
        let u2 = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// A uniform integer in `0..n` (unbiased, by rejection); `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "SeededRng::below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Shuffles a slice in place (Fisher–Yates), identically on every platform.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_state_round_trips() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        let xs: Vec<f32> = (0..10).map(|_| a.uniform01()).collect();
        let ys: Vec<f32> = (0..10).map(|_| b.uniform01()).collect();
        assert_eq!(xs, ys);
        let saved = a.state();
        let next = a.normal();
        assert_eq!(SeededRng::from_state(saved).normal(), next);
    }

    #[test]
    fn uniform_stays_in_range_and_normal_has_unit_variance() {
        let mut r = SeededRng::new(1);
        let n = 20_000;
        let xs: Vec<f32> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        for _ in 0..1000 {
            let u = r.uniform(-2.0, 3.0);
            assert!((-2.0..3.0).contains(&u));
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        SeededRng::new(3).shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, sorted);
    }
}
