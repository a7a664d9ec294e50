//! The layers: each a [`Module`](crate::Module) with PyTorch's names and defaults.

mod activation;
mod adaptive_pool;
mod batch_norm;
mod conv;
mod dropout;
mod linear;
mod nin_block;
mod pool;
mod residual;
mod sequential;
mod shape;

pub use activation::{ReLU, Sigmoid, Tanh};
pub use adaptive_pool::AdaptiveAvgPool2d;
pub use batch_norm::BatchNorm2d;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use linear::Linear;
pub use nin_block::nin_block;
pub use pool::{AvgPool2d, MaxPool2d};
pub use residual::Residual;
pub use sequential::Sequential;
pub use shape::{Flatten, Reshape};
