//! Pool2d settings, validation and the resolved geometry every backend receives.

use crate::error::{Result, spec_err};
use crate::window::{expect_rank, out_size};
use tensor::Shape;

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Maximum of the window (padding never wins).
    Max,
    /// Mean of the window, padding counted as zeros (PyTorch's `count_include_pad=True`).
    Avg,
}

/// 2-D pooling settings (PyTorch defaults: `ceil_mode=False`), pairs as `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit padding on each side; at most half the kernel, as PyTorch requires.
    pub padding: [usize; 2],
}

/// Every size a pooling kernel needs, resolved from a checked input shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    /// The settings.
    pub spec: Pool2dSpec,
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

impl Pool2dGeometry {
    /// Shape of the input `[n, c, h, w]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    /// Shape of the output `[n, c, oh, ow]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }
}

impl Pool2dSpec {
    /// A square window with the same stride and padding on both axes.
    pub fn new(kind: PoolKind, kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            kind,
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 2],
        }
    }

    /// The op's name, for error messages.
    pub fn op_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "max_pool2d",
            PoolKind::Avg => "avg_pool2d",
        }
    }

    /// Validates an input `[n, c, h, w]` against the settings.
    pub fn check(&self, x: &Shape) -> Result<Pool2dGeometry> {
        let op = self.op_name();
        if self.kernel.contains(&0) {
            return Err(spec_err(op, "kernel size must be positive"));
        }
        if self.stride.contains(&0) {
            return Err(spec_err(op, "stride must be positive"));
        }
        for axis in 0..2 {
            if 2 * self.padding[axis] > self.kernel[axis] {
                return Err(spec_err(
                    op,
                    format!(
                        "padding {} must be at most half the kernel size {}",
                        self.padding[axis], self.kernel[axis]
                    ),
                ));
            }
        }
        expect_rank(op, "input", x, 4)?;
        let d = x.dims();
        let oh = out_size(
            op,
            "height",
            d[2],
            self.kernel[0],
            self.stride[0],
            self.padding[0],
            1,
        )?;
        let ow = out_size(
            op,
            "width",
            d[3],
            self.kernel[1],
            self.stride[1],
            self.padding[1],
            1,
        )?;
        Ok(Pool2dGeometry {
            spec: *self,
            n: d[0],
            c: d[1],
            h: d[2],
            w: d[3],
            oh,
            ow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    #[test]
    fn pool_shapes() {
        let p = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0)
            .check(&s(&[2, 6, 28, 28]))
            .unwrap();
        assert_eq!(p.output_dims(), [2, 6, 14, 14]);
        assert!(
            Pool2dSpec::new(PoolKind::Max, 2, 2, 2)
                .check(&s(&[1, 1, 4, 4]))
                .is_err()
        );
    }
}
