//! Reverse-mode automatic differentiation for Fovea: a tape records ops on device tensors and
//! `backward` turns a scalar loss into gradients for every leaf.
