//! Host tensors for Fovea: shapes, f32 tensors, seeded random numbers, f16 conversion and
//! named-tensor files.
//!
//! ```
//! use tensor::{SeededRng, Tensor};
//!
//! let mut rng = SeededRng::new(0);
//! let x = Tensor::rand_uniform(&[2, 3], -1.0, 1.0, &mut rng)?;
//! let y = x.map(|v| v * 2.0).reshape(&[3, 2])?;
//! assert_eq!(y.shape().to_string(), "[3, 2]");
//! assert!(y.map(|v| v / 2.0).reshape(&[2, 3])?.allclose(&x, 0.0, 1e-6).is_ok());
//! # Ok::<(), tensor::TensorError>(())
//! ```
//!
//! Named tensors go to and from safetensors files through [`NamedTensors`] (atomic writes; f32,
//! f16 or i64 storage) and [`TensorFile`] (validated reads). The `golden` feature adds the
//! `golden` module: the PyTorch golden cases other crates' tests compare against.

mod error;
#[cfg(feature = "golden")]
pub mod golden;
mod rng;
pub mod safetensors_io;
mod shape;
mod tensor;

pub use error::{Result, TensorError};
pub use half::f16;
pub use rng::{RngState, SeededRng};
pub use safetensors_io::{FloatStorage, NamedTensors, TensorFile};
pub use shape::Shape;
pub use tensor::{Mismatch, Tensor};
