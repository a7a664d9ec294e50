//! The layers: each a [`Module`](crate::Module) with PyTorch's names and defaults.

mod activation;
mod conv;
mod dropout;
mod linear;
mod pool;
mod sequential;
mod shape;

pub use activation::{ReLU, Sigmoid, Tanh};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use linear::Linear;
pub use pool::{AvgPool2d, MaxPool2d};
pub use sequential::Sequential;
pub use shape::{Flatten, Reshape};
