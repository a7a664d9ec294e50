//! The host tensor: a shape plus contiguous row-major f32 data.

use crate::error::{Result, TensorError};
use crate::rng::SeededRng;
use crate::shape::Shape;
use half::f16;
use std::fmt;

/// A dense, contiguous, row-major f32 tensor in host memory.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f32>,
}

/// Why two tensors are not close: the worst element, located and valued.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Multi-index of the worst element (empty when the shapes differ).
    pub index: Vec<usize>,
    /// The value found in `self`.
    pub got: f32,
    /// The value expected (from `other`).
    pub want: f32,
    /// How far over the tolerance it is: `|got - want| - (atol + rtol * |want|)`.
    pub excess: f32,
    /// Elements outside the tolerance.
    pub count: usize,
    /// Set when the shapes differ, in which case no element was compared.
    pub shapes: Option<(Shape, Shape)>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((a, b)) = &self.shapes {
            return write!(f, "shapes differ: got {a}, want {b}");
        }
        write!(
            f,
            "{} element(s) out of tolerance; worst at {:?}: got {}, want {} (over by {})",
            self.count, self.index, self.got, self.want, self.excess
        )
    }
}

impl std::error::Error for Mismatch {}

impl Tensor {
    /// A tensor of `shape` holding `data`; the length must equal the shape's element count.
    pub fn new(shape: Shape, data: Vec<f32>) -> Result<Self> {
        if data.len() != shape.numel() {
            return Err(TensorError::LengthMismatch {
                shape: shape.to_string(),
                expected: shape.numel(),
                found: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor with dimensions `dims` holding `data` (length checked).
    pub fn from_vec(dims: &[usize], data: Vec<f32>) -> Result<Self> {
        Self::new(Shape::new(dims)?, data)
    }

    /// A tensor filled with `value`.
    pub fn full(dims: &[usize], value: f32) -> Result<Self> {
        let shape = Shape::new(dims)?;
        let data = vec![value; shape.numel()];
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(dims: &[usize]) -> Result<Self> {
        Self::full(dims, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(dims: &[usize]) -> Result<Self> {
        Self::full(dims, 1.0)
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(value: f32) -> Self {
        Self {
            shape: Shape::scalar(),
            data: vec![value],
        }
    }

    /// Uniform samples in `[low, high)` from a seeded generator.
    pub fn rand_uniform(dims: &[usize], low: f32, high: f32, rng: &mut SeededRng) -> Result<Self> {
        let shape = Shape::new(dims)?;
        let data = (0..shape.numel()).map(|_| rng.uniform(low, high)).collect();
        Ok(Self { shape, data })
    }

    /// Standard normal samples from a seeded generator.
    pub fn randn(dims: &[usize], rng: &mut SeededRng) -> Result<Self> {
        let shape = Shape::new(dims)?;
        let data = (0..shape.numel()).map(|_| rng.normal()).collect();
        Ok(Self { shape, data })
    }

    /// A tensor from half-precision values (widened exactly).
    pub fn from_f16(dims: &[usize], values: &[f16]) -> Result<Self> {
        Self::from_vec(dims, values.iter().map(|v| v.to_f32()).collect())
    }

    /// The values rounded to half precision (nearest even).
    pub fn to_f16(&self) -> Vec<f16> {
        self.data.iter().map(|&v| f16::from_f32(v)).collect()
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Mutable access to the elements in row-major order.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Takes the elements out.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The same data under new dimensions with the same element count.
    pub fn reshape(self, dims: &[usize]) -> Result<Self> {
        let to = Shape::new(dims)?;
        if to.numel() != self.shape.numel() {
            return Err(TensorError::BadReshape {
                from: self.shape.to_string(),
                from_numel: self.shape.numel(),
                to: to.to_string(),
                to_numel: to.numel(),
            });
        }
        Ok(Self {
            shape: to,
            data: self.data,
        })
    }

    /// The element at a multi-index.
    pub fn get(&self, index: &[usize]) -> Result<f32> {
        Ok(self.data[self.shape.offset(index)?])
    }

    /// Overwrites the element at a multi-index.
    pub fn set(&mut self, index: &[usize], value: f32) -> Result<()> {
        let i = self.shape.offset(index)?;
        self.data[i] = value;
        Ok(())
    }

    /// A new tensor with `f` applied to every element.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Self {
        Self {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// A new tensor combining two same-shaped tensors element by element.
    pub fn zip_map(&self, other: &Tensor, f: impl Fn(f32, f32) -> f32) -> Result<Self> {
        self.same_shape("zip_map", other)?;
        Ok(Self {
            shape: self.shape.clone(),
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        })
    }

    /// Sum of all elements (accumulated in f64).
    pub fn sum(&self) -> f32 {
        self.data.iter().map(|&v| v as f64).sum::<f64>() as f32
    }

    /// Mean of all elements (NaN for an empty tensor).
    pub fn mean(&self) -> f32 {
        (self.data.iter().map(|&v| v as f64).sum::<f64>() / self.data.len() as f64) as f32
    }

    /// Sum along `axis`, which is removed from the shape.
    pub fn sum_axis(&self, axis: usize) -> Result<Self> {
        self.reduce_axis(axis, |lane| lane.map(|v| v as f64).sum::<f64>() as f32)
    }

    /// Mean along `axis`, which is removed from the shape.
    pub fn mean_axis(&self, axis: usize) -> Result<Self> {
        let n = self.shape.dim(axis)?;
        self.reduce_axis(axis, |lane| {
            (lane.map(|v| v as f64).sum::<f64>() / n as f64) as f32
        })
    }

    /// Maximum along `axis`, which is removed from the shape.
    pub fn max_axis(&self, axis: usize) -> Result<Self> {
        self.nonempty_axis("max_axis", axis)?;
        self.reduce_axis(axis, |lane| lane.fold(f32::NEG_INFINITY, f32::max))
    }

    /// Index of the first maximum along `axis`, in row-major order of the reduced shape.
    pub fn argmax_axis(&self, axis: usize) -> Result<Vec<usize>> {
        self.nonempty_axis("argmax_axis", axis)?;
        let t = self.reduce_axis(axis, |lane| {
            let mut best = (0usize, f32::NEG_INFINITY);
            for (i, v) in lane.enumerate() {
                if v > best.1 || (i == 0) {
                    best = (i, v);
                }
            }
            best.0 as f32
        })?;
        Ok(t.data.iter().map(|&i| i as usize).collect())
    }

    /// Checks `|self - other| <= atol + rtol * |other|` element-wise; NaN never matches.
    pub fn allclose(&self, other: &Tensor, rtol: f32, atol: f32) -> Result<(), Mismatch> {
        if self.shape != other.shape {
            return Err(Mismatch {
                index: vec![],
                got: f32::NAN,
                want: f32::NAN,
                excess: f32::INFINITY,
                count: self.numel().max(other.numel()),
                shapes: Some((self.shape.clone(), other.shape.clone())),
            });
        }
        let mut worst: Option<(usize, f32)> = None;
        let mut count = 0;
        for (i, (&got, &want)) in self.data.iter().zip(&other.data).enumerate() {
            let excess = if got == want {
                0.0
            } else {
                (got - want).abs() - (atol + rtol * want.abs())
            };
            let excess = if excess.is_nan() {
                f32::INFINITY
            } else {
                excess
            };
            if excess > 0.0 {
                count += 1;
                if worst.is_none_or(|(_, e)| excess > e) {
                    worst = Some((i, excess));
                }
            }
        }
        match worst {
            None => Ok(()),
            Some((i, excess)) => Err(Mismatch {
                index: unravel(i, self.dims()),
                got: self.data[i],
                want: other.data[i],
                excess,
                count,
                shapes: None,
            }),
        }
    }

    fn same_shape(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.shape != other.shape {
            return Err(TensorError::ShapeMismatch {
                op,
                left: self.shape.to_string(),
                right: other.shape.to_string(),
            });
        }
        Ok(())
    }

    fn nonempty_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if self.shape.dim(axis)? == 0 {
            return Err(TensorError::EmptyReduction {
                op,
                shape: self.shape.to_string(),
            });
        }
        Ok(())
    }

    fn reduce_axis(
        &self,
        axis: usize,
        f: impl Fn(&mut dyn Iterator<Item = f32>) -> f32,
    ) -> Result<Self> {
        let out_shape = self.shape.without_axis(axis)?;
        let dims = self.dims();
        let len = dims[axis];
        let inner: usize = dims[axis + 1..].iter().product();
        let outer: usize = dims[..axis].iter().product();
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let base = o * len * inner + i;
                let mut lane = (0..len).map(|k| self.data[base + k * inner]);
                out.push(f(&mut lane));
            }
        }
        Ok(Self {
            shape: out_shape,
            data: out,
        })
    }
}

/// Converts a flat row-major offset into a multi-index.
fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for (slot, &d) in index.iter_mut().zip(dims).rev() {
        *slot = flat % d;
        flat /= d;
    }
    index
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "Tensor{} ", self.shape)?;
        let head: Vec<f32> = self.data.iter().take(SHOWN).copied().collect();
        write!(f, "{head:?}")?;
        if self.data.len() > SHOWN {
            write!(f, " ... ({} more)", self.data.len() - SHOWN)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(dims: &[usize], data: &[f32]) -> Tensor {
        Tensor::from_vec(dims, data.to_vec()).unwrap()
    }

    #[test]
    fn constructors_check_length() {
        assert!(matches!(
            Tensor::from_vec(&[2, 3], vec![0.0; 5]),
            Err(TensorError::LengthMismatch {
                expected: 6,
                found: 5,
                ..
            })
        ));
        assert_eq!(Tensor::ones(&[2, 2]).unwrap().sum(), 4.0);
        assert_eq!(Tensor::full(&[3], 2.5).unwrap().data(), &[2.5, 2.5, 2.5]);
        assert_eq!(Tensor::scalar(3.0).dims(), &[] as &[usize]);
    }

    #[test]
    fn get_set_and_reshape() {
        let mut a = Tensor::zeros(&[2, 3]).unwrap();
        a.set(&[1, 2], 5.0).unwrap();
        assert_eq!(a.get(&[1, 2]).unwrap(), 5.0);
        assert!(a.get(&[2, 0]).is_err());
        let b = a.clone().reshape(&[3, 2]).unwrap();
        assert_eq!(b.get(&[2, 1]).unwrap(), 5.0);
        assert!(matches!(
            a.reshape(&[4]),
            Err(TensorError::BadReshape { .. })
        ));
    }

    #[test]
    fn reductions_along_axes() {
        let a = t(&[2, 3], &[1.0, 5.0, 3.0, 4.0, 2.0, 6.0]);
        assert_eq!(a.sum_axis(0).unwrap().data(), &[5.0, 7.0, 9.0]);
        assert_eq!(a.sum_axis(1).unwrap().data(), &[9.0, 12.0]);
        assert_eq!(a.mean_axis(1).unwrap().data(), &[3.0, 4.0]);
        assert_eq!(a.max_axis(0).unwrap().data(), &[4.0, 5.0, 6.0]);
        assert_eq!(a.argmax_axis(1).unwrap(), vec![1, 2]);
        assert!(a.sum_axis(2).is_err());
        assert!(Tensor::zeros(&[0, 2]).unwrap().argmax_axis(0).is_err());
    }

    #[test]
    fn map_and_zip() {
        let a = t(&[2], &[1.0, 2.0]);
        assert_eq!(a.map(|v| v * 2.0).data(), &[2.0, 4.0]);
        assert_eq!(a.zip_map(&a, |x, y| x + y).unwrap().data(), &[2.0, 4.0]);
        assert!(a.zip_map(&t(&[1], &[0.0]), |x, _| x).is_err());
    }

    #[test]
    fn allclose_reports_the_worst_element() {
        let want = t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let got = t(&[2, 2], &[1.0, 2.1, 3.0, 4.5]);
        let err = got.allclose(&want, 0.0, 0.01).unwrap_err();
        assert_eq!(err.index, vec![1, 1]);
        assert_eq!((err.got, err.want, err.count), (4.5, 4.0, 2));
        assert!(err.to_string().contains("[1, 1]"));
        assert!(got.allclose(&want, 0.2, 0.0).is_ok());
        let nan = t(&[2, 2], &[f32::NAN, 2.0, 3.0, 4.0]);
        assert!(nan.allclose(&want, 1.0, 1.0).is_err());
        assert!(
            want.allclose(&t(&[4], &[1.0, 2.0, 3.0, 4.0]), 1.0, 1.0)
                .is_err()
        );
    }

    #[test]
    fn f16_round_trip() {
        let a = t(&[3], &[0.5, -2.0, 65504.0]);
        assert_eq!(Tensor::from_f16(&[3], &a.to_f16()).unwrap(), a);
        let b = t(&[1], &[0.1]);
        let back = Tensor::from_f16(&[1], &b.to_f16()).unwrap();
        assert!(back.allclose(&b, 1e-3, 0.0).is_ok());
    }

    #[test]
    fn seeded_constructors_repeat() {
        let a = Tensor::randn(&[4, 4], &mut SeededRng::new(5)).unwrap();
        let b = Tensor::randn(&[4, 4], &mut SeededRng::new(5)).unwrap();
        assert_eq!(a, b);
        let u = Tensor::rand_uniform(&[100], -1.0, 1.0, &mut SeededRng::new(5)).unwrap();
        assert!(u.data().iter().all(|v| (-1.0..1.0).contains(v)));
    }

    proptest! {
        #[test]
        fn reshape_valid_iff_numel_matches(a in 1usize..6, b in 1usize..6, c in 1usize..40) {
            let x = Tensor::zeros(&[a, b]).unwrap();
            let ok = x.reshape(&[c]).is_ok();
            prop_assert_eq!(ok, a * b == c);
        }

        #[test]
        fn sum_axis_preserves_total(dims in prop::collection::vec(1usize..4, 1..4), axis in 0usize..3) {
            let axis = axis % dims.len();
            let n: usize = dims.iter().product();
            let x = Tensor::from_vec(&dims, (0..n).map(|i| i as f32).collect()).unwrap();
            let s = x.sum_axis(axis).unwrap();
            prop_assert_eq!(s.sum(), x.sum());
        }
    }
}
