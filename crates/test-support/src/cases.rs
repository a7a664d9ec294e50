//! Random cases for comparing the backends with the reference: one case type and one proptest
//! strategy per op, shared by the property tests (`conv-kernels/tests/fast_vs_reference.rs`)
//! and the many-case checker of `cargo xtask test-kernels` (`examples/kernel_check.rs`).
//!
//! A case holds sizes, settings and a seed; `inputs()` draws its tensors from the seed, so a
//! failing case prints small and replays exactly. Strategies only yield cases the op's spec
//! accepts. [`Sampler`] draws cases without a property test around them.

use crate::check::{TestResult, randn, uniform};
use conv_kernels::{
    Activation, AdamConfig, Conv2dSpec, Device, MatmulSpec, Pool2dSpec, PoolKind, SgdConfig,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use tensor::{SeededRng, Shape, Tensor};

/// Proptest settings: `PROPTEST_CASES` when set, else 32 cases so `cargo test` stays quick.
pub fn proptest_config() -> ProptestConfig {
    config_with_default_cases(32)
}

/// Proptest settings for a property whose every case compiles new GPU pipelines: a conv case
/// specialises three kernels to its shape, about a second of llvmpipe's compiler and most of a
/// GPU conv test's time. 12 cases on a GPU (32 elsewhere), so the suite keeps to its CI budget;
/// `PROPTEST_CASES` overrides both, and `cargo xtask test-kernels` draws thousands.
pub fn proptest_config_compiling(dev: &Device) -> ProptestConfig {
    config_with_default_cases(if dev.is_gpu() { 12 } else { 32 })
}

fn config_with_default_cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    }
}

/// Draws values from strategies deterministically (a fixed seed), outside a property test.
pub struct Sampler {
    runner: TestRunner,
}

impl Sampler {
    /// A sampler whose sequence of values is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        Self {
            runner: TestRunner::new_with_rng(ProptestConfig::default(), rng),
        }
    }

    /// The next value of `strategy`.
    pub fn draw<S: Strategy>(&mut self, strategy: &S) -> TestResult<S::Value> {
        let tree = strategy
            .new_tree(&mut self.runner)
            .map_err(|r| format!("no value drawn: {r}"))?;
        Ok(tree.current())
    }
}

/// A 2-D convolution case: sizes, settings and the seed of its tensors.
#[derive(Clone, Debug)]
pub struct ConvCase {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input height and width.
    pub hw: [usize; 2],
    /// Kernel height and width.
    pub k: [usize; 2],
    /// Stride, padding, dilation and groups.
    pub spec: Conv2dSpec,
    /// Whether the convolution has a bias.
    pub bias: bool,
    /// The activation fused into the convolution, if any (see [`smooth_fused_activation`]).
    pub act: Option<Activation>,
    /// Seed of the tensors.
    pub seed: u64,
}

/// No activation, sigmoid or tanh, for the fused epilogues of conv2d and linear in cases that
/// also check gradients: their derivatives are smooth, so outputs that differ by rounding give
/// derivatives that differ by rounding (ReLU's jumps at 0; its fused forward is checked by
/// [`matmul_case`] and its fused backward by finite differences away from 0).
pub fn smooth_fused_activation() -> impl Strategy<Value = Option<Activation>> {
    prop_oneof![
        Just(None),
        Just(Some(Activation::Sigmoid)),
        Just(Some(Activation::Tanh)),
    ]
}

/// The tensors of a [`ConvCase`].
pub struct ConvInputs {
    /// Input `[n, c_in, h, w]`.
    pub x: Tensor,
    /// Weight `[c_out, c_in / groups, kh, kw]`.
    pub w: Tensor,
    /// Bias `[c_out]`, when the case has one.
    pub b: Option<Tensor>,
    /// Upstream gradient, shaped as the output.
    pub grad_y: Tensor,
}

impl ConvCase {
    /// The input and weight shapes.
    pub fn shapes(&self) -> (Shape, Shape) {
        let x = [self.n, self.c_in, self.hw[0], self.hw[1]];
        let w = [
            self.c_out,
            self.c_in / self.spec.groups,
            self.k[0],
            self.k[1],
        ];
        (
            Shape::new(&x).expect("valid case shape"),
            Shape::new(&w).expect("valid case shape"),
        )
    }

    /// Whether the spec accepts the case (kernels larger than the padded input are rejected).
    pub fn is_valid(&self) -> bool {
        let (x, w) = self.shapes();
        self.spec.check(&x, &w, None).is_ok()
    }

    /// The case's tensors, drawn from its seed.
    pub fn inputs(&self) -> TestResult<ConvInputs> {
        let (x_shape, w_shape) = self.shapes();
        let g = self.spec.check(&x_shape, &w_shape, None)?;
        let mut rng = SeededRng::new(self.seed);
        let x = randn(x_shape.dims(), &mut rng);
        let w = randn(w_shape.dims(), &mut rng);
        let b = self.bias.then(|| randn(&[self.c_out], &mut rng));
        let grad_y = randn(&g.output_dims(), &mut rng);
        Ok(ConvInputs { x, w, b, grad_y })
    }
}

fn common_divisors(a: usize, b: usize) -> Vec<usize> {
    (1..=a.min(b))
        .filter(|&d| a.is_multiple_of(d) && b.is_multiple_of(d))
        .collect()
}

/// Convolutions of up to 8 images and channels, 20×20 inputs, 5×5 kernels, stride 3,
/// padding 2, dilation 2 and any group count dividing both channel counts.
pub fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=8, 1usize..=8, 1usize..=8, any::<usize>()),
        ([1usize..=20, 1usize..=20], [1usize..=5, 1usize..=5]),
        (
            [1usize..=3, 1usize..=3],
            [0usize..=2, 0usize..=2],
            [1usize..=2, 1usize..=2],
        ),
        (any::<bool>(), any::<u64>(), smooth_fused_activation()),
    )
        .prop_map(
            |((n, c_in, c_out, gi), (hw, k), (stride, padding, dilation), (bias, seed, act))| {
                let divs = common_divisors(c_in, c_out);
                let groups = divs[gi % divs.len()];
                ConvCase {
                    n,
                    c_in,
                    c_out,
                    hw,
                    k,
                    spec: Conv2dSpec {
                        stride,
                        padding,
                        dilation,
                        groups,
                    },
                    bias,
                    act,
                    seed,
                }
            },
        )
        .prop_filter("the spec accepts the case", ConvCase::is_valid)
}

/// Groups of one input channel at stride 1 (LeNet's first layer is one), over the edges of the
/// CPU's direct kernel: output rows up to and just past 32 columns, kernels up to 9 wide.
pub fn single_channel_conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=6, 1usize..=4, 1usize..=3),
        ([1usize..=36, 1usize..=38], [1usize..=9, 1usize..=9]),
        [0usize..=3, 0usize..=3],
        (any::<bool>(), any::<u64>(), smooth_fused_activation()),
    )
        .prop_map(
            |((n, c_in, mult), (hw, k), padding, (bias, seed, act))| ConvCase {
                n,
                c_in,
                c_out: c_in * mult,
                hw,
                k,
                spec: Conv2dSpec {
                    stride: [1, 1],
                    padding,
                    dilation: [1, 1],
                    groups: c_in,
                },
                bias,
                act,
                seed,
            },
        )
        .prop_filter("the spec accepts the case", ConvCase::is_valid)
}

/// Stride-1 convolutions of several input channels per group, over the edges of the CPU's
/// implicit-GEMM kernels: output channels per group across blocks of 8 and tiles of 4, taps
/// across tiles of 6, padded rows that end inside a 16-lane vector or on its edge, padding up
/// to and past `k − 1` (where the input gradient falls back to im2col), and groups.
pub fn stride_one_conv_case() -> impl Strategy<Value = ConvCase> {
    several_channel_conv_case(1..=1)
}

/// Strided convolutions (stride 2 or 3 each way) of several input channels per group, over
/// the edges of the CPU's implicit GEMM on phase planes: kernels narrower than, equal to and
/// wider than the stride (phases no tap reads), odd and even sizes, padding past `k − 1`.
pub fn strided_conv_case() -> impl Strategy<Value = ConvCase> {
    several_channel_conv_case(2..=3)
}

/// Any of the convolution strategies above, for a test binary that forces one CPU path (im2col,
/// AVX2) and checks it on every kind of case.
pub fn any_conv_case() -> impl Strategy<Value = ConvCase> {
    prop_oneof![
        stride_one_conv_case(),
        strided_conv_case(),
        single_channel_conv_case(),
        conv_case()
    ]
}

/// Convolutions of several input channels per group at dilation 1 and a stride in `stride`
/// each way.
fn several_channel_conv_case(
    stride: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=3, 1usize..=6, 1usize..=19, 1usize..=3),
        ([1usize..=18, 1usize..=34], [1usize..=7, 1usize..=7]),
        ([0usize..=4, 0usize..=4], [stride.clone(), stride]),
        (any::<bool>(), any::<u64>(), smooth_fused_activation()),
    )
        .prop_map(
            |((n, cig, cog, groups), (hw, k), (padding, stride), (bias, seed, act))| ConvCase {
                n,
                c_in: cig * groups,
                c_out: cog * groups,
                hw,
                k,
                spec: Conv2dSpec {
                    stride,
                    padding,
                    dilation: [1, 1],
                    groups,
                },
                bias,
                act,
                seed,
            },
        )
        .prop_filter("the spec accepts the case", ConvCase::is_valid)
}

/// A pooling case.
#[derive(Clone, Debug)]
pub struct PoolCase {
    /// Max or average.
    pub kind: PoolKind,
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height and width.
    pub hw: [usize; 2],
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Requested padding, kept at most half the window by [`PoolCase::spec`].
    pub pad_frac: [usize; 2],
    /// Inputs clamped at 0, as after a ReLU: windows then hold equal maxima (the first in
    /// scan order wins).
    pub ties: bool,
    /// Seed of the tensors.
    pub seed: u64,
}

impl PoolCase {
    /// The spec: padding 0..=2, kept at most half the kernel (PyTorch's rule, checked by the
    /// spec).
    pub fn spec(&self) -> Pool2dSpec {
        let padding = [0, 1].map(|a| self.pad_frac[a].min(self.kernel[a] / 2));
        Pool2dSpec {
            kind: self.kind,
            kernel: self.kernel,
            stride: self.stride,
            padding,
        }
    }

    /// The input shape.
    pub fn x_shape(&self) -> Shape {
        Shape::new(&[self.n, self.c, self.hw[0], self.hw[1]]).expect("valid case shape")
    }

    /// Whether the spec accepts the case.
    pub fn is_valid(&self) -> bool {
        self.spec().check(&self.x_shape()).is_ok()
    }

    /// The input and the upstream gradient, drawn from the seed.
    pub fn inputs(&self) -> TestResult<(Tensor, Tensor)> {
        let x_shape = self.x_shape();
        let g = self.spec().check(&x_shape)?;
        let mut rng = SeededRng::new(self.seed);
        let mut x = randn(x_shape.dims(), &mut rng);
        if self.ties {
            x.data_mut().iter_mut().for_each(|v| *v = v.max(0.0));
        }
        let gy = randn(&g.output_dims(), &mut rng);
        Ok((x, gy))
    }
}

/// Max and average pooling of up to 8 images and channels, 20×20 inputs, 5×5 windows; one
/// case in three is the common 2×2 window at stride 2 without padding (the fast kernels'
/// special path), and half the inputs hold ties.
pub fn pool_case() -> impl Strategy<Value = PoolCase> {
    let window = prop_oneof![
        2 => ([1usize..=5, 1usize..=5], [1usize..=3, 1usize..=3], [0usize..=2, 0usize..=2]),
        1 => Just(([2, 2], [2, 2], [0, 0])),
    ];
    (
        prop_oneof![Just(PoolKind::Max), Just(PoolKind::Avg)],
        (1usize..=8, 1usize..=8),
        [1usize..=20, 1usize..=20],
        window,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(kind, (n, c), hw, (kernel, stride, pad_frac), ties, seed)| PoolCase {
                kind,
                n,
                c,
                hw,
                kernel,
                stride,
                pad_frac,
                ties,
                seed,
            },
        )
        .prop_filter("the spec accepts the case", PoolCase::is_valid)
}

/// A matrix product case: `op(a)` is `m×k`, `op(b)` is `k×n`.
#[derive(Clone, Debug)]
pub struct MatmulCase {
    /// Rows, inner size and columns.
    pub mkn: (usize, usize, usize),
    /// Which operands are transposed.
    pub spec: MatmulSpec,
    /// Whether a bias row is added.
    pub bias: bool,
    /// The activation fused into the product's output, if any.
    pub act: Option<Activation>,
    /// Seed of the tensors.
    pub seed: u64,
}

impl MatmulCase {
    /// `a`, `b` and the optional bias, drawn from the seed.
    pub fn inputs(&self) -> (Tensor, Tensor, Option<Tensor>) {
        let (m, k, n) = self.mkn;
        let mut rng = SeededRng::new(self.seed);
        let a = randn(&if self.spec.trans_a { [k, m] } else { [m, k] }, &mut rng);
        let b = randn(&if self.spec.trans_b { [n, k] } else { [k, n] }, &mut rng);
        let bias = self.bias.then(|| randn(&[n], &mut rng));
        (a, b, bias)
    }
}

/// LeNet's two poolings (2×2, stride 2) over `n` images of 6 channels, each kind, with the
/// activation before them: rows of 28 after a sigmoid (a multiple of 4: the GPU's kernels that
/// take four elements at a time) and of 10 after a ReLU (pairs, with ties).
pub fn lenet_pool_cases(n: usize) -> Vec<(PoolCase, Activation)> {
    let mut cases = Vec::new();
    for (hw, act) in [(28, Activation::Sigmoid), (10, Activation::Relu)] {
        for kind in [PoolKind::Avg, PoolKind::Max] {
            let case = PoolCase {
                kind,
                n,
                c: 6,
                hw: [hw, hw],
                kernel: [2, 2],
                stride: [2, 2],
                pad_frac: [0, 0],
                ties: act == Activation::Relu,
                seed: hw as u64,
            };
            cases.push((case, act));
        }
    }
    cases
}

/// Products up to 140×140×140 with every transpose, with and without bias; half of them with
/// every side a multiple of 4 (the GPU's flat matmul then loads whole vec4s).
pub fn matmul_case() -> impl Strategy<Value = MatmulCase> {
    (
        prop_oneof![
            (1usize..=140, 1usize..=140, 1usize..=140),
            (1usize..=35, 1usize..=35, 1usize..=35).prop_map(|(m, k, n)| (4 * m, 4 * k, 4 * n)),
        ],
        (any::<bool>(), any::<bool>()),
        any::<bool>(),
        any::<u64>(),
        prop_oneof![
            Just(None),
            Just(Some(Activation::Sigmoid)),
            Just(Some(Activation::Relu)),
            Just(Some(Activation::Tanh)),
        ],
    )
        .prop_map(|(mkn, (trans_a, trans_b), bias, seed, act)| MatmulCase {
            mkn,
            spec: MatmulSpec { trans_a, trans_b },
            bias,
            act,
            seed,
        })
}

/// A linear layer case: `n` rows of `i` features to `o` features.
#[derive(Clone, Debug)]
pub struct LinearCase {
    /// Rows, input and output features.
    pub nio: (usize, usize, usize),
    /// Whether the layer has a bias.
    pub bias: bool,
    /// The activation fused into the layer, if any (see [`smooth_fused_activation`]).
    pub act: Option<Activation>,
    /// Seed of the tensors.
    pub seed: u64,
}

/// The tensors of a [`LinearCase`].
pub struct LinearInputs {
    /// Input `[n, i]`.
    pub x: Tensor,
    /// Weight `[o, i]`.
    pub w: Tensor,
    /// Bias `[o]`, when the case has one.
    pub b: Option<Tensor>,
    /// Upstream gradient `[n, o]`.
    pub grad_y: Tensor,
}

impl LinearCase {
    /// The case's tensors, drawn from its seed.
    pub fn inputs(&self) -> LinearInputs {
        let (n, i, o) = self.nio;
        let mut rng = SeededRng::new(self.seed);
        let x = randn(&[n, i], &mut rng);
        let w = randn(&[o, i], &mut rng);
        let b = self.bias.then(|| randn(&[o], &mut rng));
        let grad_y = randn(&[n, o], &mut rng);
        LinearInputs { x, w, b, grad_y }
    }
}

/// Up to 40 rows, 100 input and 40 output features, with and without bias.
pub fn linear_case() -> impl Strategy<Value = LinearCase> {
    (
        (1usize..=40, 1usize..=100, 1usize..=40),
        any::<bool>(),
        any::<u64>(),
        smooth_fused_activation(),
    )
        .prop_map(|(nio, bias, seed, act)| LinearCase {
            nio,
            bias,
            act,
            seed,
        })
}

/// An activation case: `len` values uniform in `±scale`, extremes and zero included.
#[derive(Clone, Debug)]
pub struct ActivationCase {
    /// The activation.
    pub act: Activation,
    /// Number of values.
    pub len: usize,
    /// Magnitude of the values.
    pub scale: f32,
    /// Seed of the tensors.
    pub seed: u64,
}

impl ActivationCase {
    /// The input (its first values ±1e4, 0 and ±88.5) and the upstream gradient.
    pub fn inputs(&self) -> (Tensor, Tensor) {
        let mut rng = SeededRng::new(self.seed);
        let mut x = uniform(&[self.len], -self.scale, self.scale, &mut rng);
        // Always include the extremes and zero.
        for (i, v) in [1e4f32, -1e4, 0.0, 88.5, -88.5].into_iter().enumerate() {
            if i < self.len {
                x.data_mut()[i] = v;
            }
        }
        let gy = randn(&[self.len], &mut rng);
        (x, gy)
    }
}

/// Sigmoid, relu and tanh over up to 70 000 values of magnitude 1 to 1e4.
pub fn activation_case() -> impl Strategy<Value = ActivationCase> {
    (
        prop_oneof![
            Just(Activation::Sigmoid),
            Just(Activation::Relu),
            Just(Activation::Tanh)
        ],
        1usize..=70_000,
        prop_oneof![Just(1.0f32), Just(10.0), Just(100.0), Just(1e4)],
        any::<u64>(),
    )
        .prop_map(|(act, len, scale, seed)| ActivationCase {
            act,
            len,
            scale,
            seed,
        })
}

/// A softmax cross-entropy case: `n` rows of `classes` logits uniform in `±scale`.
#[derive(Clone, Debug)]
pub struct CrossEntropyCase {
    /// Rows.
    pub n: usize,
    /// Classes.
    pub classes: usize,
    /// Magnitude of the logits.
    pub scale: f32,
    /// Seed of the logits and labels.
    pub seed: u64,
}

impl CrossEntropyCase {
    /// The logits and the labels, drawn from the seed.
    pub fn inputs(&self) -> (Tensor, Vec<u32>) {
        let mut rng = SeededRng::new(self.seed);
        let logits = uniform(&[self.n, self.classes], -self.scale, self.scale, &mut rng);
        let labels = (0..self.n)
            .map(|_| rng.below(self.classes as u64) as u32)
            .collect();
        (logits, labels)
    }
}

/// Up to 40 rows of up to 12 classes, logits of magnitude 1, 30 or 1e4.
pub fn cross_entropy_case() -> impl Strategy<Value = CrossEntropyCase> {
    (
        1usize..=40,
        1usize..=12,
        prop_oneof![Just(1.0f32), Just(30.0), Just(1e4)],
        any::<u64>(),
    )
        .prop_map(|(n, classes, scale, seed)| CrossEntropyCase {
            n,
            classes,
            scale,
            seed,
        })
}

/// An optimizer case: `steps` steps of SGD (`sgd` set) or else Adam on one parameter.
#[derive(Clone, Debug)]
pub struct OptimizerCase {
    /// The SGD settings, or `None` for Adam.
    pub sgd: Option<SgdConfig>,
    /// The Adam settings (used when `sgd` is `None`).
    pub adam: AdamConfig,
    /// Number of steps.
    pub steps: usize,
    /// Seed of the parameter and gradients.
    pub seed: u64,
}

impl OptimizerCase {
    /// The parameter (`[3, 1..=40]`) and one gradient per step, drawn from the seed.
    pub fn inputs(&self) -> (Tensor, Vec<Tensor>) {
        let mut rng = SeededRng::new(self.seed);
        let dims = [3, 1 + rng.below(40) as usize];
        let w = randn(&dims, &mut rng);
        let grads = (0..self.steps).map(|_| randn(&dims, &mut rng)).collect();
        (w, grads)
    }
}

/// SGD with lr below 1, momentum (or none) below 0.99, weight decay (or none) below 0.1 and
/// Nesterov when there is momentum, for 1 to 4 steps.
pub fn sgd_case() -> impl Strategy<Value = OptimizerCase> {
    (
        0.0f32..1.0,
        prop_oneof![Just(0.0f32), 0.0f32..0.99],
        prop_oneof![Just(0.0f32), 0.0f32..0.1],
        any::<bool>(),
        1usize..=4,
        any::<u64>(),
    )
        .prop_map(
            |(lr, momentum, weight_decay, nesterov, steps, seed)| OptimizerCase {
                sgd: Some(SgdConfig {
                    lr,
                    momentum,
                    weight_decay,
                    nesterov: nesterov && momentum > 0.0,
                }),
                adam: AdamConfig::default(),
                steps,
                seed,
            },
        )
}

/// Adam with lr 1e-4 to 0.1, beta1 below 0.99, beta2 0.9 to 0.9999, eps 1e-8 or 1e-6 and
/// weight decay (or none) below 0.1, for 1 to 5 steps.
pub fn adam_case() -> impl Strategy<Value = OptimizerCase> {
    (
        1e-4f32..0.1,
        0.0f32..0.99,
        0.9f32..0.9999,
        prop_oneof![Just(1e-8f32), Just(1e-6)],
        prop_oneof![Just(0.0f32), 0.0f32..0.1],
        1usize..=5,
        any::<u64>(),
    )
        .prop_map(
            |(lr, beta1, beta2, eps, weight_decay, steps, seed)| OptimizerCase {
                sgd: None,
                adam: AdamConfig {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                },
                steps,
                seed,
            },
        )
}

/// An element-wise case: two vectors of `len` normals and a scalar `alpha`.
#[derive(Clone, Debug)]
pub struct ElementwiseCase {
    /// Number of values.
    pub len: usize,
    /// The scalar of scale and fill.
    pub alpha: f32,
    /// Seed of the vectors.
    pub seed: u64,
}

impl ElementwiseCase {
    /// `a` and `b`, drawn from the seed.
    pub fn inputs(&self) -> (Tensor, Tensor) {
        let mut rng = SeededRng::new(self.seed);
        let a = randn(&[self.len], &mut rng);
        let b = randn(&[self.len], &mut rng);
        (a, b)
    }
}

/// Up to 100 000 values, alpha in ±3.
pub fn elementwise_case() -> impl Strategy<Value = ElementwiseCase> {
    (1usize..=100_000, -3.0f32..3.0, any::<u64>()).prop_map(|(len, alpha, seed)| ElementwiseCase {
        len,
        alpha,
        seed,
    })
}

/// A per-channel sum case (the bias gradient of conv2d when `hw > 1`, of linear when 1):
/// `grad_y` is `[n, c, hw, 1]`.
#[derive(Clone, Debug)]
pub struct ChannelSumCase {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Spatial size.
    pub hw: usize,
    /// Seed of the tensors.
    pub seed: u64,
}

impl ChannelSumCase {
    /// `grad_y` `[n, c, hw, 1]`, an input `[n, 1, hw, 1]` and a 1×1 weight `[c, 1, 1, 1]`.
    pub fn inputs(&self) -> (Tensor, Tensor, Tensor) {
        let mut rng = SeededRng::new(self.seed);
        let gy = randn(&[self.n, self.c, self.hw, 1], &mut rng);
        let x = randn(&[self.n, 1, self.hw, 1], &mut rng);
        let w = randn(&[self.c, 1, 1, 1], &mut rng);
        (gy, x, w)
    }
}

/// Up to 64 images of 16 channels of 900 values.
pub fn channel_sum_case() -> impl Strategy<Value = ChannelSumCase> {
    (1usize..=64, 1usize..=16, 1usize..=900, any::<u64>())
        .prop_map(|(n, c, hw, seed)| ChannelSumCase { n, c, hw, seed })
}
