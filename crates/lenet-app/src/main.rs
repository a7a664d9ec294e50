//! The `lenet` binary: train, evaluate, inspect and explain LeNet on Fashion-MNIST (being built).

fn main() {}
