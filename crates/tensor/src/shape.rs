//! Tensor shapes: dimensions, element counts and row-major strides.

use crate::error::{Result, TensorError};
use std::fmt;

/// The dimensions of a tensor, outermost first (NCHW for images).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    dims: Vec<usize>,
}

impl Shape {
    /// A shape with the given dimensions; fails when the element count overflows `usize`.
    pub fn new(dims: &[usize]) -> Result<Self> {
        dims.iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| TensorError::ShapeOverflow {
                dims: dims.to_vec(),
            })?;
        Ok(Self {
            dims: dims.to_vec(),
        })
    }

    /// The rank-0 shape of a scalar.
    pub fn scalar() -> Self {
        Self { dims: Vec::new() }
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Contiguous row-major strides, in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.dims.len()];
        for i in (0..self.dims.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.dims[i + 1];
        }
        strides
    }

    /// Size of dimension `axis`, or an error when the axis does not exist.
    pub fn dim(&self, axis: usize) -> Result<usize> {
        self.dims.get(axis).copied().ok_or(TensorError::BadAxis {
            axis,
            rank: self.rank(),
        })
    }

    /// Flat offset of a multi-index, checking rank and bounds.
    pub fn offset(&self, index: &[usize]) -> Result<usize> {
        if index.len() != self.rank() || index.iter().zip(&self.dims).any(|(i, d)| i >= d) {
            return Err(TensorError::IndexOutOfBounds {
                index: index.to_vec(),
                shape: self.to_string(),
            });
        }
        Ok(index.iter().zip(self.strides()).map(|(i, s)| i * s).sum())
    }

    /// This shape with `axis` removed (the shape of a reduction along it).
    pub fn without_axis(&self, axis: usize) -> Result<Shape> {
        self.dim(axis)?;
        let mut dims = self.dims.clone();
        dims.remove(axis);
        Ok(Shape { dims })
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shape{self}")
    }
}

impl TryFrom<&[usize]> for Shape {
    type Error = TensorError;
    fn try_from(dims: &[usize]) -> Result<Self> {
        Shape::new(dims)
    }
}

impl<const N: usize> TryFrom<[usize; N]> for Shape {
    type Error = TensorError;
    fn try_from(dims: [usize; N]) -> Result<Self> {
        Shape::new(&dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn displays_like_pytorch_sizes() {
        assert_eq!(
            Shape::new(&[256, 6, 28, 28]).unwrap().to_string(),
            "[256, 6, 28, 28]"
        );
        assert_eq!(Shape::scalar().to_string(), "[]");
    }

    #[test]
    fn strides_are_row_major() {
        let s = Shape::new(&[2, 3, 4]).unwrap();
        assert_eq!(s.strides(), vec![12, 4, 1]);
        assert_eq!(s.offset(&[1, 2, 3]).unwrap(), 23);
        assert_eq!(Shape::scalar().strides(), Vec::<usize>::new());
    }

    #[test]
    fn overflow_and_bad_index_are_errors() {
        assert!(matches!(
            Shape::new(&[usize::MAX, 2]),
            Err(TensorError::ShapeOverflow { .. })
        ));
        let s = Shape::new(&[2, 3]).unwrap();
        assert!(s.offset(&[2, 0]).is_err());
        assert!(s.offset(&[0]).is_err());
        assert!(s.dim(2).is_err());
    }

    proptest! {
        #[test]
        fn offsets_enumerate_every_element_once(dims in prop::collection::vec(1usize..5, 0..4)) {
            let s = Shape::new(&dims).unwrap();
            let strides = s.strides();
            // The last valid index maps to numel - 1 and strides multiply out to the dims.
            let last: Vec<usize> = dims.iter().map(|d| d - 1).collect();
            prop_assert_eq!(s.offset(&last).unwrap(), s.numel() - 1);
            if !dims.is_empty() {
                prop_assert_eq!(strides[0] * dims[0], s.numel());
            }
        }
    }
}
