//! The model registry: every network the app knows, by name, with its builder and its default
//! recipe; and [`Net`], a built network. This file is the app's only user of nn-layers' `Module`
//! API, so a change there is a change here.
//!
//! Adding a model is one variant of [`ModelKind`] and its entry in [`ModelKind::spec`].

use crate::config::{OptimizerKind, ScheduleKind, choice_name, parse_choice};
use autograd::{Param, Var};
use clap::ValueEnum;
use conv_kernels::Device;
use nn_layers::{LayerSummary, Module, Sequential, lenet};
use serde::{Deserialize, Serialize};
use tensor::SeededRng;

/// Which network: the value of `--model`, of `model` in `config.json` and of a checkpoint's
/// `extra.model` entry.
#[derive(ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// d2l's LeNet: Sigmoid + AvgPool.
    Seed,
    /// ReLU + MaxPool, same sizes.
    Modern,
}

/// How a model trains unless the command line says otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// The learning rate of that optimizer (another optimizer gets its own default rate).
    pub lr: f32,
    /// How the learning rate changes over training.
    pub schedule: ScheduleKind,
    /// Examples per batch.
    pub batch_size: u32,
    /// Passes over the training set.
    pub epochs: u32,
    /// How the builder initialises the weights (it always does; this says how).
    pub init: &'static str,
}

impl Recipe {
    /// The learning rate for `optimizer`: the recipe's own when it is the recipe's optimizer,
    /// else that optimizer's usual default.
    pub fn lr_for(&self, optimizer: OptimizerKind) -> f32 {
        if optimizer == self.optimizer {
            self.lr
        } else {
            optimizer.default_lr()
        }
    }
}

/// One registry entry.
#[derive(Clone, Copy, Debug)]
pub struct ModelSpec {
    /// A one-line description (`lenet summary`'s heading).
    pub title: &'static str,
    /// Builds the network with freshly initialised parameters.
    pub build: fn(&Device, &mut SeededRng) -> nn_layers::Result<Sequential>,
    /// The default training recipe.
    pub recipe: Recipe,
}

impl ModelKind {
    /// The registry entry of this model.
    pub fn spec(self) -> ModelSpec {
        match self {
            // d2l's chapter 7.6 exactly.
            ModelKind::Seed => ModelSpec {
                title: "seed LeNet (d2l: Sigmoid + AvgPool)",
                build: lenet::seed,
                recipe: Recipe {
                    optimizer: OptimizerKind::Sgd,
                    lr: 0.9,
                    schedule: ScheduleKind::Constant,
                    batch_size: 256,
                    epochs: 10,
                    init: "Xavier-uniform weights (d2l's init_cnn)",
                },
            },
            ModelKind::Modern => ModelSpec {
                title: "modern LeNet (ReLU + MaxPool)",
                build: lenet::modern,
                recipe: Recipe {
                    optimizer: OptimizerKind::Adam,
                    lr: 1e-3,
                    schedule: ScheduleKind::Cosine,
                    batch_size: 256,
                    epochs: 10,
                    init: "Kaiming-uniform weights (He, for ReLU)",
                },
            },
        }
    }

    /// The name used on the command line, in `config.json` and in checkpoints.
    pub fn name(self) -> String {
        choice_name(self)
    }

    /// Parses a stored model name (from a checkpoint), naming the accepted ones when unknown.
    pub fn from_name(name: &str) -> anyhow::Result<ModelKind> {
        parse_choice("model", name)
    }

    /// Builds this network on `device`, initialised from `rng`.
    pub fn build(self, device: &Device, rng: &mut SeededRng) -> anyhow::Result<Net> {
        Ok(Net {
            layers: (self.spec().build)(device, rng)?,
        })
    }
}

/// The output of one conv or pooling layer, as `lenet inspect` draws it.
pub struct FeatureMap {
    /// The layer's position among the model's children (the prefix of its parameter names).
    pub index: usize,
    /// The layer's kind (`Conv2d`, `AvgPool2d`, `MaxPool2d`).
    pub kind: &'static str,
    /// The layer's output.
    pub value: Var,
}

/// A built network.
pub struct Net {
    layers: Sequential,
}

impl Net {
    /// Runs the network on `x`, recording on `x`'s tape.
    pub fn forward(&self, x: &Var) -> anyhow::Result<Var> {
        Ok(self.layers.forward(x)?)
    }

    /// The trainable parameters with their PyTorch names (`1.weight`, ...), in model order.
    pub fn named_parameters(&self) -> Vec<(String, Param)> {
        self.layers.named_parameters()
    }

    /// Training behaviour on (PyTorch's `net.train()`).
    pub fn train(&mut self) {
        self.layers.train();
    }

    /// Evaluation behaviour on (PyTorch's `net.eval()`).
    pub fn eval(&mut self) {
        self.layers.eval();
    }

    /// The network as nn-layers' checkpoints take it.
    pub fn module(&self) -> &dyn Module {
        &self.layers
    }

    /// One row per layer for an input of `input` dimensions (no computation runs).
    pub fn layer_summaries(&self, input: &[usize]) -> anyhow::Result<Vec<LayerSummary>> {
        Ok(self.layers.layer_summaries(&Device::Reference, input)?)
    }

    /// Runs the network on `x` and keeps the output of every conv and pooling layer.
    pub fn feature_maps(&self, x: &Var) -> anyhow::Result<Vec<FeatureMap>> {
        let mut h = x.clone();
        let mut maps = Vec::new();
        for (index, layer) in self.layers.children().iter().enumerate() {
            h = layer.forward(&h)?;
            if matches!(layer.kind(), "Conv2d" | "AvgPool2d" | "MaxPool2d") {
                maps.push(FeatureMap {
                    index,
                    kind: layer.kind(),
                    value: h.clone(),
                });
            }
        }
        Ok(maps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_builds_and_names_round_trip() {
        for &kind in ModelKind::value_variants() {
            let net = kind
                .build(&Device::Reference, &mut SeededRng::new(0))
                .unwrap();
            assert!(!net.named_parameters().is_empty(), "{kind:?}");
            assert_eq!(ModelKind::from_name(&kind.name()).unwrap(), kind);
        }
        assert_eq!(ModelKind::Seed.name(), "seed");
        assert_eq!(ModelKind::Modern.name(), "modern");
    }

    #[test]
    fn unknown_model_names_list_the_known_ones() {
        let err = ModelKind::from_name("resnet").unwrap_err().to_string();
        assert!(
            err.contains("resnet") && err.contains("seed, modern"),
            "{err}"
        );
    }

    #[test]
    fn recipes_are_the_chapters() {
        let seed = ModelKind::Seed.spec().recipe;
        assert_eq!(
            (seed.optimizer, seed.lr, seed.schedule),
            (OptimizerKind::Sgd, 0.9, ScheduleKind::Constant)
        );
        assert_eq!((seed.batch_size, seed.epochs), (256, 10));
        let modern = ModelKind::Modern.spec().recipe;
        assert_eq!(
            (modern.optimizer, modern.lr, modern.schedule),
            (OptimizerKind::Adam, 1e-3, ScheduleKind::Cosine)
        );
        // Another optimizer than the recipe's gets that optimizer's usual rate.
        assert_eq!(modern.lr_for(OptimizerKind::Sgd), 0.9);
        assert_eq!(seed.lr_for(OptimizerKind::Adam), 1e-3);
    }

    #[test]
    fn feature_maps_are_the_conv_and_pool_outputs() {
        let device = Device::cpu();
        let net = ModelKind::Seed
            .build(&device, &mut SeededRng::new(0))
            .unwrap();
        let tape = autograd::Tape::new(&device);
        let _guard = tape.no_grad();
        let x = tape.constant(
            device
                .upload(&tensor::Tensor::zeros(&[1, 1, 28, 28]).unwrap())
                .unwrap(),
        );
        let maps = net.feature_maps(&x).unwrap();
        let seen: Vec<(usize, &str)> = maps.iter().map(|m| (m.index, m.kind)).collect();
        assert_eq!(
            seen,
            [
                (1, "Conv2d"),
                (3, "AvgPool2d"),
                (4, "Conv2d"),
                (6, "AvgPool2d")
            ]
        );
        assert_eq!(maps[3].value.value().dims(), [1, 16, 5, 5]);
    }
}
