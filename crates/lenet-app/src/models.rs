//! The model registry: every network the app knows, by name, with its builder and its default
//! recipe; and [`Net`], a built network. This file is the app's only user of nn-layers' `Module`
//! API, so a change there is a change here.
//!
//! Adding a model is one variant of [`ModelKind`] and its entry in [`ModelKind::spec`].

use crate::config::{
    AugmentSpec, FASHION_MNIST_STATS, NormalizeSpec, OptimizerKind, ScheduleKind, choice_name,
    parse_choice,
};
use autograd::{Param, Var};
use clap::ValueEnum;
use conv_kernels::Device;
use nn_layers::{Module, Sequential, init, lenet, nin, resnet};
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
    /// d2l's Network in Network for 28×28 (1×1 convs, global average pooling; 35,750 parameters).
    NinSmall,
    /// A small ResNet of d2l's residual blocks with batch norm (175,338 parameters).
    ResnetSmall,
}

/// Dropout of `nin-small` (before its last block). d2l uses 0.5; the issue reports that NiN
/// underfits Fashion-MNIST in 10 epochs, and the recipe also augments, so less dropout is
/// used: 0.2. (A choice made without a tuning run; `lenet train --model nin-small` is the
/// place to measure it.)
pub const NIN_DROPOUT: f32 = 0.2;

/// How `lenet inspect` looks inside a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// LeNet: every conv's filters; the output of every conv and pooling layer.
    Layers,
    /// Deeper CNNs: the first conv's filters; the output of every block (top-level child).
    Blocks,
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
    /// SGD momentum (0: none; used when the optimizer is the recipe's).
    pub momentum: f32,
    /// L2 weight decay (batch norm's parameters excluded; used with the recipe's optimizer).
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Training augmentation.
    pub augment: AugmentSpec,
    /// Input normalisation: part of the model's data pipeline, also what a bare PyTorch
    /// state_dict of this model is evaluated with.
    pub normalize: Option<NormalizeSpec>,
}

/// LeNet's recipe fields beyond the optimizer: none of the CNN extras.
const LENET_EXTRAS: (f32, f32, bool, AugmentSpec, Option<NormalizeSpec>) =
    (0.0, 0.0, false, AugmentSpec::NONE, None);

/// Crop 2 pixels and flip, as the CNN recipes train.
const CROP_FLIP: AugmentSpec = AugmentSpec {
    crop: 2,
    flip: true,
};

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
    /// What `lenet inspect` draws.
    pub view: View,
}

/// `nin_small` with [`NIN_DROPOUT`] and Kaiming-normal convolutions (PyTorch's default init
/// leaves NiN at chance).
fn nin_small(device: &Device, rng: &mut SeededRng) -> nn_layers::Result<Sequential> {
    let net = nin::nin_small(device, rng, NIN_DROPOUT)?;
    init::kaiming_normal_convs(&net, device, rng)?;
    Ok(net)
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
                    momentum: LENET_EXTRAS.0,
                    weight_decay: LENET_EXTRAS.1,
                    nesterov: LENET_EXTRAS.2,
                    augment: LENET_EXTRAS.3,
                    normalize: LENET_EXTRAS.4,
                },
                view: View::Layers,
            },
            ModelKind::Modern => ModelSpec {
                title: "modern LeNet (ReLU + MaxPool)",
                build: lenet::modern,
                // 4e-3 reached 0.90 test accuracy in 10 epochs where 1e-3 gave 0.885.
                recipe: Recipe {
                    optimizer: OptimizerKind::Adam,
                    lr: 4e-3,
                    schedule: ScheduleKind::Cosine,
                    batch_size: 256,
                    epochs: 10,
                    init: "Kaiming-uniform weights (He, for ReLU)",
                    momentum: LENET_EXTRAS.0,
                    weight_decay: LENET_EXTRAS.1,
                    nesterov: LENET_EXTRAS.2,
                    augment: LENET_EXTRAS.3,
                    normalize: LENET_EXTRAS.4,
                },
                view: View::Layers,
            },
            ModelKind::NinSmall => ModelSpec {
                title: "NiN small (d2l: nin_block ×3, global average pooling)",
                build: nin_small,
                recipe: Recipe {
                    optimizer: OptimizerKind::Adam,
                    lr: 2e-3,
                    schedule: ScheduleKind::Cosine,
                    batch_size: 128,
                    epochs: 10,
                    init: "Kaiming-normal convolutions, zero biases; dropout 0.2",
                    momentum: 0.0,
                    weight_decay: 0.0,
                    nesterov: false,
                    // NiN underfits in 10 epochs: augmentation cost accuracy (crop + flip
                    // 0.877, none 0.886, one run each, 2026-12-02).
                    augment: AugmentSpec::NONE,
                    normalize: Some(FASHION_MNIST_STATS),
                },
                view: View::Blocks,
            },
            ModelKind::ResnetSmall => ModelSpec {
                title: "ResNet small (d2l: Residual blocks with batch norm, 16-32-64 channels)",
                build: resnet::resnet_small,
                recipe: Recipe {
                    optimizer: OptimizerKind::Sgd,
                    lr: 0.1,
                    schedule: ScheduleKind::Cosine,
                    batch_size: 128,
                    epochs: 10,
                    init: "PyTorch's default init (batch norm: weight 1, bias 0)",
                    momentum: 0.9,
                    weight_decay: 5e-4,
                    nesterov: true,
                    augment: CROP_FLIP,
                    normalize: Some(FASHION_MNIST_STATS),
                },
                view: View::Blocks,
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
            kind: self,
        })
    }
}

/// The output of one layer or block, as `lenet inspect` draws it.
pub struct FeatureMap {
    /// The layer's position among the model's children (the prefix of its parameter names).
    pub index: usize,
    /// The layer's kind (`Conv2d`, `AvgPool2d`, `MaxPool2d`, `Sequential`, ...).
    pub kind: &'static str,
    /// The layer's output.
    pub value: Var,
}

/// A built network.
pub struct Net {
    layers: Sequential,
    kind: ModelKind,
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

    /// The layers alone, without the model's name (to use as a plain [`Module`]).
    pub fn into_layers(self) -> Sequential {
        self.layers
    }

    /// The network as nn-layers' checkpoints take it.
    pub fn module(&self) -> &dyn Module {
        &self.layers
    }

    /// The conv weights `lenet inspect` draws, `[out, in, kh, kw]`, in model order: every
    /// conv's for LeNet, the first conv's for the deeper models.
    pub fn filters(&self) -> Vec<(String, Param)> {
        let convs = self
            .named_parameters()
            .into_iter()
            .filter(|(n, p)| n.ends_with("weight") && p.dims().len() == 4);
        match self.kind.spec().view {
            View::Layers => convs.collect(),
            View::Blocks => convs.take(1).collect(),
        }
    }

    /// Runs the network on `x` and keeps the outputs `lenet inspect` draws: for LeNet every
    /// conv and pooling layer's, for the deeper models every block's (each top-level child
    /// with an image-shaped output, dropout aside).
    pub fn feature_maps(&self, x: &Var) -> anyhow::Result<Vec<FeatureMap>> {
        let mut h = x.clone();
        let mut maps = Vec::new();
        let view = self.kind.spec().view;
        for (index, layer) in self.layers.children().iter().enumerate() {
            h = layer.forward(&h)?;
            let drawn = match view {
                View::Layers => matches!(layer.kind(), "Conv2d" | "AvgPool2d" | "MaxPool2d"),
                View::Blocks => h.dims().len() == 4 && layer.kind() != "Dropout",
            };
            if drawn {
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
        assert_eq!(ModelKind::NinSmall.name(), "nin-small");
        assert_eq!(ModelKind::ResnetSmall.name(), "resnet-small");
        let count = |k: ModelKind| {
            k.build(&Device::Reference, &mut SeededRng::new(0))
                .unwrap()
                .module()
                .num_parameters()
        };
        assert_eq!(count(ModelKind::NinSmall), nin::NUM_PARAMETERS);
        assert_eq!(count(ModelKind::ResnetSmall), resnet::NUM_PARAMETERS);
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
            (OptimizerKind::Adam, 4e-3, ScheduleKind::Cosine)
        );
        for r in [seed, modern] {
            assert_eq!((r.momentum, r.weight_decay, r.nesterov), (0.0, 0.0, false));
            assert_eq!((r.augment, r.normalize), (AugmentSpec::NONE, None));
        }
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
        assert_eq!(net.filters().len(), 2);
    }

    #[test]
    fn blocks_are_drawn_for_the_deeper_models() {
        let device = Device::cpu();
        for (kind, want) in [
            (
                ModelKind::NinSmall,
                &[
                    (0, "Sequential", 32, 28),
                    (1, "MaxPool2d", 32, 13),
                    (2, "Sequential", 64, 13),
                    (3, "MaxPool2d", 64, 6),
                    (5, "Sequential", 10, 6),
                    (6, "AdaptiveAvgPool2d", 10, 1),
                ][..],
            ),
            (
                ModelKind::ResnetSmall,
                &[
                    (0, "Sequential", 16, 28),
                    (1, "Sequential", 16, 28),
                    (2, "Sequential", 32, 14),
                    (3, "Sequential", 64, 7),
                    (4, "AdaptiveAvgPool2d", 64, 1),
                ][..],
            ),
        ] {
            let mut net = kind.build(&device, &mut SeededRng::new(0)).unwrap();
            net.eval();
            let tape = autograd::Tape::new(&device);
            let _guard = tape.no_grad();
            let x = tape.constant(device.zeros(&[1, 1, 28, 28]).unwrap());
            let seen: Vec<(usize, &str, usize, usize)> = net
                .feature_maps(&x)
                .unwrap()
                .iter()
                .map(|m| (m.index, m.kind, m.value.dims()[1], m.value.dims()[2]))
                .collect();
            assert_eq!(seen, want, "{kind:?}");
            let filters = net.filters();
            assert_eq!(filters.len(), 1);
            assert_eq!(filters[0].0, "0.0.weight");
        }
    }
}
