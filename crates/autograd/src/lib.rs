//! Reverse-mode automatic differentiation for Fovea: a [`Tape`] records ops on device tensors
//! and [`Var::backward`] turns a scalar loss into [`Gradients`] for every leaf.
//!
//! Every op runs through `conv-kernels` on the tape's [`Device`](conv_kernels::Device), forward
//! and backward, so the same code trains on the CPU and the GPU; nothing is read back to the
//! host unless asked.
//!
//! ```
//! use autograd::{Param, Tape};
//! use conv_kernels::{Conv2dSpec, Device};
//! use tensor::{SeededRng, Tensor};
//!
//! let dev = Device::cpu();
//! let mut rng = SeededRng::new(0);
//! let weight = Param::new(dev.upload(&Tensor::randn(&[4, 1, 3, 3], &mut rng)?)?);
//! let labels = dev.upload_indices(&[1, 3])?;
//!
//! let tape = Tape::new(&dev);
//! let x = tape.constant(dev.upload(&Tensor::randn(&[2, 1, 6, 6], &mut rng)?)?);
//! let w = tape.param(&weight);
//! let logits = x
//!     .conv2d(&w, None, &Conv2dSpec::new(1, 1))?
//!     .relu()?
//!     .max_pool2d(6, 6, 0)?
//!     .flatten(1)?;
//! let out = logits.cross_entropy(&labels)?;
//! let grads = out.loss.backward()?;
//! assert_eq!(grads.param(&weight).unwrap().dims(), &[4, 1, 3, 3]);
//! assert!(dev.read_scalar(out.loss.value())? > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod activation;
mod adaptive_avg_pool2d;
mod add;
mod batch_norm2d;
mod cat;
mod conv2d;
mod conv2d_activation_pool2d;
mod cross_entropy;
mod dropout;
mod error;
pub mod gradcheck;
mod linear;
mod matmul;
mod pool;
mod reshape;
mod tape;

pub use cross_entropy::CrossEntropy;
pub use error::{AutogradError, Result};
pub use gradcheck::{GradcheckOptions, GradcheckReport, gradcheck};
pub use tape::{Gradients, NoGradGuard, Param, ParamId, Tape, Var};
