//! Dropout settings and the counter-based generator of its mask: element `i` of a call keyed by
//! `seed` is kept when `bits(seed, i) >> 8 >= threshold(p)`, with integer arithmetic only, so
//! every backend (WGSL included) draws the same mask bit for bit.

use crate::error::{Result, spec_err};

/// Dropout with probability `p` and the key of one call's mask (PyTorch `F.dropout` in
/// training mode: kept elements are scaled by `1 / (1 - p)`; `p = 1` zeroes everything).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutSpec {
    /// Probability of zeroing an element, in `[0, 1]`.
    pub p: f32,
    /// The mask's key: the same seed gives the same mask on every device. A layer draws a new
    /// one per forward pass; its backward pass uses the same one.
    pub seed: u64,
}

/// Wellons' `lowbias32` integer hash: a bijection on `u32` with low bias.
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

impl DropoutSpec {
    /// Checks `p`.
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(spec_err(
                "dropout",
                format!("probability must be in [0, 1], found {}", self.p),
            ));
        }
        Ok(())
    }

    /// The two 32-bit words of the key (`seed` mixed), as the shader receives them.
    pub fn key(&self) -> [u32; 2] {
        let k0 = hash32(self.seed as u32 ^ 0x9e37_79b9);
        let k1 = hash32((self.seed >> 32) as u32 ^ k0);
        [k0, k1]
    }

    /// Elements whose 24-bit draw is below this are dropped: `round(p * 2^24)`.
    pub fn threshold(&self) -> u32 {
        (f64::from(self.p) * f64::from(1u32 << 24)).round() as u32
    }

    /// The factor applied to kept elements.
    pub fn scale(&self) -> f32 {
        if self.p >= 1.0 {
            0.0
        } else {
            1.0 / (1.0 - self.p)
        }
    }

    /// Whether element `i` is kept, given [`Self::key`] and [`Self::threshold`].
    pub fn keeps(key: [u32; 2], threshold: u32, i: u32) -> bool {
        let bits = hash32(hash32(i ^ key[0]).wrapping_add(key[1]));
        bits >> 8 >= threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_about_one_minus_p() {
        let s = DropoutSpec { p: 0.3, seed: 7 };
        let (k, t) = (s.key(), s.threshold());
        let kept = (0..100_000)
            .filter(|&i| DropoutSpec::keeps(k, t, i))
            .count();
        assert!((kept as f64 / 1e5 - 0.7).abs() < 0.01, "{kept}");
        let other = DropoutSpec { p: 0.3, seed: 8 }.key();
        let same = (0..1000)
            .filter(|&i| DropoutSpec::keeps(k, t, i) == DropoutSpec::keeps(other, t, i))
            .count();
        assert!(same < 700, "seeds give different masks: {same}");
        assert!(DropoutSpec { p: 1.5, seed: 0 }.check().is_err());
        assert_eq!(DropoutSpec { p: 0.0, seed: 0 }.threshold(), 0);
    }
}
