//! Neural-network building blocks for Fovea: modules and layers with PyTorch-compatible names,
//! initialisers, loss, optimizers and safetensors checkpoints.
//!
//! One training step of d2l's LeNet, device-agnostic (only the two scalars are read back):
//!
//! ```
//! use autograd::Tape;
//! use conv_kernels::{Device, SgdConfig};
//! use nn_layers::{Module, Optimizer, Sgd, lenet, loss};
//! use tensor::{SeededRng, Tensor};
//!
//! let dev = Device::cpu();
//! let mut rng = SeededRng::new(0);
//! let net = lenet::seed(&dev, &mut rng)?;
//! let mut opt = Sgd::new(&dev, net.named_parameters(), SgdConfig::plain(0.9))?;
//!
//! let images = dev.upload(&Tensor::rand_uniform(&[8, 1, 28, 28], 0.0, 1.0, &mut rng)?)?;
//! let labels = dev.upload_indices(&[0, 1, 2, 3, 4, 5, 6, 7])?;
//! // On the CPU the step runs on a worker of rayon's pool, where each op's fork-join starts.
//! let (loss, correct) = dev.run_on_workers(|| -> Result<(f32, f32), Box<dyn std::error::Error + Send + Sync>> {
//!     let tape = Tape::new(&dev);
//!     let logits = net.forward(&tape.constant(images))?;
//!     let out = loss::cross_entropy(&logits, &labels)?;
//!     let grads = out.loss.backward()?;
//!     opt.step(&grads)?;
//!     // One read-back for both scalars: on the GPU, one submission and one wait per step.
//!     let scalars = dev.read_scalars(&[out.loss.value(), &out.correct])?;
//!     Ok((scalars[0], scalars[1]))
//! })?;
//! assert!(loss > 0.0 && (0.0..=8.0).contains(&correct));
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

#![warn(missing_docs)]

mod buffer;
pub mod checkpoint;
mod error;
pub mod init;
pub mod layers;
pub mod lenet;
pub mod loss;
mod module;
pub mod nin;
pub mod optim;
pub mod resnet;
mod summary;

pub use autograd::{Gradients, Param, Tape, Var};
pub use buffer::{Buffer, BufferKind, StateDict, StateTensor};
pub use checkpoint::TrainingState;
pub use error::{Mismatches, NnError, Result};
pub use layers::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU,
    Reshape, Residual, Sequential, Sigmoid, Tanh, nin_block,
};
pub use module::{Module, ModuleRng, ModuleVisitor, TrainingFlag};
pub use optim::{Adam, Optimizer, Sgd};
pub use summary::{LayerInfo, LayerSummary, Window};
