//! Training-time augmentation (random crop of a zero-padded image, random horizontal flip) and
//! input normalisation, as torchvision's `RandomCrop(size, padding)`,
//! `RandomHorizontalFlip()` and `Normalize(mean, std)` define them, applied by the
//! [`DataLoader`](crate::DataLoader) while it builds batches.
//!
//! The random choices are drawn from ChaCha8 keyed by the loader's seed, on the stream of the
//! epoch, at a word position fixed by the item's position in the epoch: item `k` of epoch `e`
//! gets the same crop and flip on every platform, whatever the batch size, prefetching or thread
//! timing, and any epoch can be recomputed on its own (resume), like the shuffle.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::error::{DatasetError, Result};

/// Random crop and flip settings. The default does nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Augment {
    /// Zeros added on each side before a random crop back to the original size (`0`: no crop).
    pub crop_padding: usize,
    /// Mirror left-right with probability ½.
    pub flip: bool,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        crop_padding: 0,
        flip: false,
    };

    /// True when the settings change nothing.
    pub fn is_none(&self) -> bool {
        self.crop_padding == 0 && !self.flip
    }

    /// Checks the settings against images of `rows × cols`: the padding must be below both
    /// sides (a crop of an image padded by its own size or more could hold none of it).
    pub fn check(&self, rows: usize, cols: usize) -> Result<()> {
        let side = rows.min(cols);
        if self.crop_padding > 0 && self.crop_padding >= side {
            return Err(DatasetError::InvalidSetting {
                setting: "augment",
                reason: format!(
                    "crop padding {} does not fit {rows}×{cols} images: expected below {side}",
                    self.crop_padding
                ),
            });
        }
        Ok(())
    }

    /// Writes `image` (`rows × cols` bytes), cropped and flipped as `choice` says, into `out`.
    pub(crate) fn apply(
        &self,
        image: &[u8],
        rows: usize,
        cols: usize,
        choice: Choice,
        out: &mut Vec<u8>,
    ) {
        let p = self.crop_padding as isize;
        let (dy, dx) = (choice.dy as isize - p, choice.dx as isize - p);
        for y in 0..rows as isize {
            let sy = y + dy;
            for x in 0..cols as isize {
                let x = if choice.flip {
                    cols as isize - 1 - x
                } else {
                    x
                };
                let sx = x + dx;
                let inside = (0..rows as isize).contains(&sy) && (0..cols as isize).contains(&sx);
                out.push(if inside {
                    image[sy as usize * cols + sx as usize]
                } else {
                    0
                });
            }
        }
    }
}

/// One item's random choices: the crop's corner in the padded image (`0..=2·padding` each) and
/// whether to mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub dy: usize,
    pub dx: usize,
    pub flip: bool,
}

/// Keys the augmentation stream apart from the shuffle's (same seed, other key).
const AUGMENT_KEY: u64 = 0x6175_676d_656e_7421; // "augment!"

/// The choices for the item at `position` in epoch `epoch` under `seed`: one 64-bit word of
/// ChaCha8 (keyed by `seed ^ AUGMENT_KEY`, stream `epoch`, word position `2·position`) split into
/// three fields; a range `r` is drawn from 24 bits as `(bits · r) >> 24`, whose bias is below
/// `r / 2^24` (under 4e-6 for any padding of a 28×28 image).
pub(crate) fn choice(aug: &Augment, seed: u64, epoch: u64, position: usize) -> Choice {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ AUGMENT_KEY);
    rng.set_stream(epoch);
    rng.set_word_pos(2 * position as u128);
    let word = rng.next_u64();
    let range = 2 * aug.crop_padding as u64 + 1;
    let pick = |bits: u64| (((bits & 0xff_ffff) * range) >> 24) as usize;
    Choice {
        dy: pick(word),
        dx: pick(word >> 24),
        flip: aug.flip && (word >> 63) == 1,
    }
}

/// Per-channel input normalisation `x' = (x - mean) / std`, applied after scaling bytes to
/// `0..=1` (torchvision's `Normalize` after `ToTensor`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    /// Subtracted from every pixel.
    pub mean: f32,
    /// Divides every pixel after the subtraction.
    pub std: f32,
}

impl Normalize {
    /// Rejects a non-finite mean and a standard deviation that is not finite and positive.
    pub fn check(&self) -> Result<()> {
        if !self.mean.is_finite() || !self.std.is_finite() || self.std <= 0.0 {
            return Err(DatasetError::InvalidSetting {
                setting: "normalize",
                reason: format!(
                    "expected a finite mean and a finite std above 0, found mean {} std {}",
                    self.mean, self.std
                ),
            });
        }
        Ok(())
    }

    /// Normalises one value already scaled to `0..=1`.
    pub fn apply(&self, x: f32) -> f32 {
        (x - self.mean) / self.std
    }
}

/// Byte to f32: `byte / 255` (PyTorch's `ToTensor`), then `normalize` when given.
pub(crate) fn byte_table(normalize: Option<Normalize>) -> [f32; 256] {
    std::array::from_fn(|b| {
        let x = b as f32 / 255.0;
        normalize.map_or(x, |n| n.apply(x))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_pinned() {
        // Golden values of this implementation: the same on every platform. Changing the
        // derivation changes training runs.
        let aug = Augment {
            crop_padding: 2,
            flip: true,
        };
        let got: Vec<(usize, usize, bool)> = (0..6)
            .map(|k| {
                let c = choice(&aug, 0, 0, k);
                (c.dy, c.dx, c.flip)
            })
            .collect();
        assert_eq!(got, GOLDEN);
        // The position, not the order of calls, decides.
        assert_eq!(choice(&aug, 0, 0, 4), choice(&aug, 0, 0, 4));
        assert_ne!(
            (0..16).map(|k| choice(&aug, 0, 0, k)).collect::<Vec<_>>(),
            (0..16).map(|k| choice(&aug, 0, 1, k)).collect::<Vec<_>>()
        );
    }

    const GOLDEN: [(usize, usize, bool); 6] = [
        (2, 2, true),
        (2, 1, true),
        (4, 1, false),
        (0, 1, false),
        (0, 0, false),
        (0, 1, true),
    ];

    #[test]
    fn every_offset_is_reachable() {
        let aug = Augment {
            crop_padding: 1,
            flip: false,
        };
        let mut seen = [[false; 3]; 3];
        for k in 0..200 {
            let c = choice(&aug, 5, 0, k);
            assert!(!c.flip);
            seen[c.dy][c.dx] = true;
        }
        assert!(seen.iter().flatten().all(|&s| s), "{seen:?}");
    }
}
