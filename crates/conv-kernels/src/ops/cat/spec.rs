//! Concatenation settings, validation, and the resolved geometry: every input seen as `outer`
//! rows of `inner[i]` contiguous elements, placed side by side in the output's rows.

use crate::error::{Result, shape_err, spec_err};
use tensor::Shape;

const OP: &str = "cat";

/// Concatenation along one axis (PyTorch `torch.cat(tensors, dim)`; `dim = 1` joins channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CatSpec {
    /// The axis the inputs are joined along.
    pub dim: usize,
}

/// The checked layout of a concatenation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CatGeometry {
    /// Product of the dimensions before `dim` (the number of rows).
    pub outer: usize,
    /// Elements per row of each input (its `dim` extent times the trailing dimensions).
    pub inner: Vec<usize>,
    /// The inputs' shapes.
    pub input_dims: Vec<Vec<usize>>,
    /// The output's shape.
    pub output_dims: Vec<usize>,
}

impl CatGeometry {
    /// Elements per row of the output.
    pub fn output_inner(&self) -> usize {
        self.inner.iter().sum()
    }
    /// Where input `i`'s row starts inside an output row.
    pub fn offset(&self, i: usize) -> usize {
        self.inner[..i].iter().sum()
    }
}

impl CatSpec {
    /// Joining channels of `[n, c, h, w]` tensors.
    pub const CHANNELS: CatSpec = CatSpec { dim: 1 };

    /// Validates the inputs' shapes: at least one, the same rank, `dim` inside it, equal sizes
    /// on every other axis.
    pub fn check(&self, inputs: &[&Shape]) -> Result<CatGeometry> {
        let Some(first) = inputs.first() else {
            return Err(spec_err(OP, "needs at least one tensor"));
        };
        if self.dim >= first.rank() {
            return Err(spec_err(
                OP,
                format!("dim {} is out of range for rank {}", self.dim, first.rank()),
            ));
        }
        let mut output_dims = first.dims().to_vec();
        output_dims[self.dim] = 0;
        for (i, s) in inputs.iter().enumerate() {
            let ok = s.rank() == first.rank()
                && (0..s.rank()).all(|a| a == self.dim || s.dims()[a] == first.dims()[a]);
            if !ok {
                let mut want = first.dims().to_vec();
                want[self.dim] = s.dims().get(self.dim).copied().unwrap_or(0);
                return Err(shape_err(OP, format!("tensor {i}"), Shape::new(&want)?, s));
            }
            output_dims[self.dim] += s.dims()[self.dim];
        }
        let outer = first.dims()[..self.dim].iter().product();
        let inner = inputs
            .iter()
            .map(|s| s.dims()[self.dim..].iter().product())
            .collect();
        Ok(CatGeometry {
            outer,
            inner,
            input_dims: inputs.iter().map(|s| s.dims().to_vec()).collect(),
            output_dims,
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
    fn channel_layout() {
        let (a, b) = (s(&[2, 3, 4, 5]), s(&[2, 1, 4, 5]));
        let g = CatSpec::CHANNELS.check(&[&a, &b]).unwrap();
        assert_eq!(g.output_dims, [2, 4, 4, 5]);
        assert_eq!(
            (g.outer, g.inner.clone(), g.offset(1)),
            (2, vec![60, 20], 60)
        );
        assert!(CatSpec::CHANNELS.check(&[&a, &s(&[2, 1, 4, 4])]).is_err());
        assert!(CatSpec { dim: 4 }.check(&[&a]).is_err());
        assert!(CatSpec::CHANNELS.check(&[]).is_err());
    }
}
