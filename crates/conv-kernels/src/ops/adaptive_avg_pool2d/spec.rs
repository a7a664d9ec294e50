//! Adaptive average pooling settings, PyTorch's window rule, and the resolved geometry.

use crate::error::{Result, spec_err};
use crate::window::expect_rank;
use tensor::Shape;

const OP: &str = "adaptive_avg_pool2d";

/// Adaptive average pooling to a fixed output size (PyTorch `nn.AdaptiveAvgPool2d`);
/// `[1, 1]` is global average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AdaptiveAvgPool2dSpec {
    /// Output `[height, width]`.
    pub output_size: [usize; 2],
}

/// Every size the kernels need, resolved from a checked input `[n, c, h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AdaptiveAvgPool2dGeometry {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

/// The half-open input range `[floor(i * len / out), ceil((i + 1) * len / out))` that output
/// `i` of `out` averages along an axis of length `len` (PyTorch's rule).
pub fn adaptive_window(i: usize, len: usize, out: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

/// The half-open range of outputs whose windows contain input `i` (the inverse of
/// [`adaptive_window`], used by gathering backward passes).
pub fn adaptive_window_outputs(i: usize, len: usize, out: usize) -> (usize, usize) {
    (i * out / len, ((i + 1) * out).div_ceil(len))
}

impl AdaptiveAvgPool2dSpec {
    /// Global average pooling (`[1, 1]`).
    pub const GLOBAL: AdaptiveAvgPool2dSpec = AdaptiveAvgPool2dSpec {
        output_size: [1, 1],
    };

    /// Pooling to `[oh, ow]`.
    pub fn new(oh: usize, ow: usize) -> Self {
        Self {
            output_size: [oh, ow],
        }
    }

    /// Validates an input `[n, c, h, w]` (non-empty planes, positive output size).
    pub fn check(&self, x: &Shape) -> Result<AdaptiveAvgPool2dGeometry> {
        if self.output_size.contains(&0) {
            return Err(spec_err(OP, "output size must be positive"));
        }
        expect_rank(OP, "input", x, 4)?;
        let d = x.dims();
        if d[2] == 0 || d[3] == 0 {
            return Err(spec_err(
                OP,
                format!("input planes must be non-empty, found {}x{}", d[2], d[3]),
            ));
        }
        Ok(AdaptiveAvgPool2dGeometry {
            n: d[0],
            c: d[1],
            h: d[2],
            w: d[3],
            oh: self.output_size[0],
            ow: self.output_size[1],
        })
    }
}

impl AdaptiveAvgPool2dGeometry {
    /// Shape of the input.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    /// Shape of the output.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }
    /// Whether this is global average pooling.
    pub fn is_global(&self) -> bool {
        self.oh == 1 && self.ow == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_pytorch_and_invert() {
        // L = 5, out = 3: [0, 2), [1, 4), [3, 5).
        let w: Vec<_> = (0..3).map(|i| adaptive_window(i, 5, 3)).collect();
        assert_eq!(w, [(0, 2), (1, 4), (3, 5)]);
        for (len, out) in [(5, 3), (7, 1), (3, 7), (6, 4), (1, 1)] {
            for i in 0..len {
                let (lo, hi) = adaptive_window_outputs(i, len, out);
                for o in 0..out {
                    let (s, e) = adaptive_window(o, len, out);
                    assert_eq!(
                        (s..e).contains(&i),
                        (lo..hi).contains(&o),
                        "{len} {out} {i} {o}"
                    );
                }
            }
        }
    }
}
