//! Matmul settings, validation and the resolved sizes.

use crate::error::{Result, shape_err};
use crate::window::expect_rank;
use tensor::Shape;

/// Matrix product settings: `C = op(A) · op(B) (+ bias per column)`, op = optional transpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatmulSpec {
    /// Use Aᵀ: A is stored `[k, m]`.
    pub trans_a: bool,
    /// Use Bᵀ: B is stored `[n, k]`.
    pub trans_b: bool,
}

/// Sizes of a checked matrix product: `C[m, n] = op(A)[m, k] · op(B)[k, n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulGeometry {
    /// The settings.
    pub spec: MatmulSpec,
    /// Rows of C.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of C.
    pub n: usize,
}

impl MatmulGeometry {
    /// Multiply-adds times two.
    pub fn flops(&self) -> u64 {
        2 * (self.m * self.k * self.n) as u64
    }
}

impl MatmulSpec {
    /// Validates rank-2 operands and an optional bias of length n.
    pub fn check(&self, a: &Shape, b: &Shape, bias: Option<&Shape>) -> Result<MatmulGeometry> {
        const OP: &str = "matmul";
        expect_rank(OP, "A", a, 2)?;
        expect_rank(OP, "B", b, 2)?;
        let (m, k) = if self.trans_a {
            (a.dims()[1], a.dims()[0])
        } else {
            (a.dims()[0], a.dims()[1])
        };
        let (kb, n) = if self.trans_b {
            (b.dims()[1], b.dims()[0])
        } else {
            (b.dims()[0], b.dims()[1])
        };
        if k != kb {
            return Err(shape_err(
                OP,
                format!("inner dimension of B (trans_b = {})", self.trans_b),
                k,
                format!("{kb} (A {a}, B {b}, trans_a = {})", self.trans_a),
            ));
        }
        if let Some(bs) = bias
            && bs.dims() != [n]
        {
            return Err(shape_err(OP, "bias", format!("[{n}]"), bs));
        }
        Ok(MatmulGeometry {
            spec: *self,
            m,
            k,
            n,
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
    fn matmul_shapes() {
        let m = MatmulSpec {
            trans_a: false,
            trans_b: true,
        }
        .check(&s(&[256, 400]), &s(&[120, 400]), Some(&s(&[120])))
        .unwrap();
        assert_eq!((m.m, m.k, m.n), (256, 400, 120));
        assert!(
            MatmulSpec::default()
                .check(&s(&[2, 3]), &s(&[2, 3]), None)
                .is_err()
        );
    }
}
