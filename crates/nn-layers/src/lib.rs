//! Neural-network building blocks for Fovea: modules and layers with PyTorch-compatible names,
//! initialisers, loss, optimizers and safetensors checkpoints.
