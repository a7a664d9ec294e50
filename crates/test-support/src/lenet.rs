//! The hand-written LeNet training step: forward, backward and SGD written directly with
//! [`Device`] ops (no autograd), shared by the benches, the `gpu_step` example and the GPU
//! tests.
//!
//! [`Arch::seed_lenet`] is the d2l seed LeNet; any [`Arch`] of the same form (convolutions,
//! each followed by a sigmoid and a 2×2 average pool, then linear layers with a sigmoid between
//! them) trains the same way, e.g. the smaller nets of the GPU tests.
//!
//! ```
//! use conv_kernels::Device;
//! use fovea_test_support::lenet::{Arch, HandNet};
//! use tensor::SeededRng;
//!
//! let dev = Device::cpu();
//! let mut net = HandNet::new(&dev, Arch::seed_lenet(), &mut SeededRng::new(0))?;
//! let (x, labels) = net.random_batch(4, &mut SeededRng::new(1))?;
//! let loss = net.train_step(&x, &labels, 0.9)?;
//! assert!(loss.is_finite());
//! # Ok::<(), conv_kernels::KernelError>(())
//! ```

use conv_kernels::{
    Activation, Conv2dSpec, Device, DeviceTensor, GradsWanted, IndexTensor, KernelError,
    Pool2dSpec, PoolKind, Result, SgdConfig,
};
use tensor::{SeededRng, Tensor};

/// FLOPs of one seed-LeNet training step per image (forward, backward without conv1's input
/// gradient, SGD), counting a multiply-add as two.
pub const SEED_LENET_STEP_FLOPS_PER_IMAGE: u64 = {
    let conv1 = 2 * 6 * 28 * 28 * 25;
    let conv2 = 2 * 16 * 10 * 10 * 150;
    let fc = 2 * (400 * 120 + 120 * 84 + 84 * 10);
    2 * conv1 + 3 * conv2 + 3 * fc
};

/// One convolution of an [`Arch`]: square kernel, stride 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    /// Output channels.
    pub out: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Padding on each side.
    pub padding: usize,
}

/// A LeNet-shaped network: convolutions (each followed by a sigmoid and a 2×2 average pool),
/// flattening, then linear layers with a sigmoid between each two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arch {
    /// Input channels, height and width of one image.
    pub input: [usize; 3],
    /// The convolutions, in order.
    pub convs: Vec<ConvLayer>,
    /// The output features of each linear layer; the last is the class count.
    pub linears: Vec<usize>,
}

impl Arch {
    /// d2l's seed LeNet on 1×28×28 images: Conv(1→6, 5, pad 2), Conv(6→16, 5), Linear(400→120),
    /// Linear(120→84), Linear(84→10).
    pub fn seed_lenet() -> Self {
        Self {
            input: [1, 28, 28],
            convs: vec![
                ConvLayer {
                    out: 6,
                    kernel: 5,
                    padding: 2,
                },
                ConvLayer {
                    out: 16,
                    kernel: 5,
                    padding: 0,
                },
            ],
            linears: vec![120, 84, 10],
        }
    }

    /// The class count (the last linear layer's outputs).
    pub fn classes(&self) -> usize {
        self.linears.last().copied().unwrap_or(0)
    }

    /// Every parameter's shape with its fan-in, in PyTorch order (weight, bias per layer).
    pub fn param_shapes(&self) -> Vec<(Vec<usize>, usize)> {
        let [mut c, mut h, mut w] = self.input;
        let mut shapes = Vec::new();
        for l in &self.convs {
            let fan_in = c * l.kernel * l.kernel;
            shapes.push((vec![l.out, c, l.kernel, l.kernel], fan_in));
            shapes.push((vec![l.out], fan_in));
            c = l.out;
            h = (h + 2 * l.padding + 1 - l.kernel) / 2;
            w = (w + 2 * l.padding + 1 - l.kernel) / 2;
        }
        let mut features = c * h * w;
        for &out in &self.linears {
            shapes.push((vec![out, features], features));
            shapes.push((vec![out], features));
            features = out;
        }
        shapes
    }
}

/// The loss and correct-count device scalars of one step.
pub struct StepScalars {
    /// Mean cross-entropy of the batch.
    pub loss: DeviceTensor,
    /// Correct predictions in the batch.
    pub correct: DeviceTensor,
}

/// An [`Arch`] with its parameters on a device, trained by the hand-written step.
pub struct HandNet {
    dev: Device,
    arch: Arch,
    params: Vec<DeviceTensor>,
}

fn missing(what: &str) -> KernelError {
    KernelError::InvalidSpec {
        op: "hand_net",
        reason: format!("{what} was not returned"),
    }
}

const ALL_GRADS: GradsWanted = GradsWanted {
    input: true,
    weight: true,
    bias: true,
};

impl HandNet {
    /// Parameters drawn uniformly in ±1/sqrt(fan_in) (PyTorch's default scale), in order.
    pub fn new(dev: &Device, arch: Arch, rng: &mut SeededRng) -> Result<Self> {
        let params = arch
            .param_shapes()
            .iter()
            .map(|(dims, fan_in)| {
                let bound = 1.0 / (*fan_in as f32).sqrt();
                dev.upload_owned(Tensor::rand_uniform(dims, -bound, bound, rng)?)
            })
            .collect::<Result<_>>()?;
        Self::from_params(dev, arch, params)
    }

    /// The net with the given parameters (weight, bias per layer, in order); an error when
    /// their number or shapes disagree with `arch`.
    pub fn from_params(dev: &Device, arch: Arch, params: Vec<DeviceTensor>) -> Result<Self> {
        let shapes = arch.param_shapes();
        let same = shapes.len() == params.len()
            && shapes.iter().zip(&params).all(|((d, _), p)| p.dims() == d);
        if !same {
            let got: Vec<_> = params.iter().map(|p| p.dims().to_vec()).collect();
            let want: Vec<_> = shapes.into_iter().map(|(d, _)| d).collect();
            return Err(KernelError::InvalidSpec {
                op: "hand_net",
                reason: format!("parameters {got:?} do not fit the architecture's {want:?}"),
            });
        }
        Ok(Self {
            dev: dev.clone(),
            arch,
            params,
        })
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[DeviceTensor] {
        &self.params
    }

    /// A batch of `n` random images (uniform in [0, 1)) and labels on the net's device.
    pub fn random_batch(
        &self,
        n: usize,
        rng: &mut SeededRng,
    ) -> Result<(DeviceTensor, IndexTensor)> {
        let [c, h, w] = self.arch.input;
        let x = self
            .dev
            .upload_owned(Tensor::rand_uniform(&[n, c, h, w], 0.0, 1.0, rng)?)?;
        let classes = self.arch.classes() as u64;
        let labels: Vec<u32> = (0..n).map(|_| rng.below(classes) as u32).collect();
        Ok((x, self.dev.upload_indices(&labels)?))
    }

    /// One training step (forward, backward, plain SGD with learning rate `lr`); returns the
    /// mean loss of the batch (read back, as a training loop would).
    pub fn train_step(&mut self, x: &DeviceTensor, labels: &IndexTensor, lr: f32) -> Result<f32> {
        let out = self.step(x, labels, lr)?;
        self.dev.read_scalar(&out.loss)
    }

    /// One training step; the loss and correct count stay on the device.
    pub fn step(&mut self, x: &DeviceTensor, labels: &IndexTensor, lr: f32) -> Result<StepScalars> {
        self.step_timed(x, labels, lr, &mut |_| Ok(()))
    }

    /// [`HandNet::step`], calling `lap` with a name after each op or group of ops (`conv1
    /// fwd`, `sigmoid1 fwd`, `pool1 fwd`, ..., `sgd`), e.g. to time them.
    pub fn step_timed(
        &mut self,
        x: &DeviceTensor,
        labels: &IndexTensor,
        lr: f32,
        lap: &mut dyn FnMut(&str) -> Result<()>,
    ) -> Result<StepScalars> {
        let d = &self.dev;
        let p = &self.params;
        let n = x.dims()[0];
        let sig = Activation::Sigmoid;
        let pool = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0);
        let convs = self.arch.convs.len();
        let conv_spec = |i: usize| Conv2dSpec::new(1, self.arch.convs[i].padding);

        // Forward. `inputs[i]` feeds conv i; `sigmoids[i]` is its activated output.
        let mut inputs = vec![x.clone()];
        let mut sigmoids = Vec::new();
        for i in 0..convs {
            let a = d.conv2d(&inputs[i], &p[2 * i], Some(&p[2 * i + 1]), &conv_spec(i))?;
            lap(&format!("conv{} fwd", i + 1))?;
            let s = d.activation(&a, sig)?;
            lap(&format!("sigmoid{} fwd", i + 1))?;
            let q = d.pool2d(&s, &pool)?.output;
            lap(&format!("pool{} fwd", i + 1))?;
            sigmoids.push(s);
            inputs.push(q);
        }
        let pooled = inputs.last().expect("the input").clone();
        let features = pooled.numel() / n;
        // `feeds[j]` feeds linear j; the last linear's output is the logits.
        let mut feeds = vec![pooled.reshape(&[n, features])?];
        let linears = self.arch.linears.len();
        let mut logits = None;
        for j in 0..linears {
            let k = 2 * (convs + j);
            let y = d.linear(&feeds[j], &p[k], Some(&p[k + 1]))?;
            if j + 1 < linears {
                feeds.push(d.activation(&y, sig)?);
                lap(&format!("fc{} fwd + sigmoid", j + 1))?;
            } else {
                lap(&format!("fc{} fwd", j + 1))?;
                logits = Some(y);
            }
        }
        let logits = logits.ok_or_else(|| missing("the logits (no linear layer)"))?;
        let ce = d.softmax_cross_entropy(&logits, labels, true)?;
        lap("softmax CE")?;

        // Backward, last layer first; `grads` collects (index, gradient) pairs.
        let mut grads: Vec<Option<DeviceTensor>> = vec![None; p.len()];
        let mut g = ce
            .grad_logits
            .ok_or_else(|| missing("no logits gradient"))?;
        for j in (0..linears).rev() {
            let k = 2 * (convs + j);
            if j + 1 < linears {
                g = d.activation_backward(&feeds[j + 1], &g, sig)?;
            }
            let l = d.linear_backward(&feeds[j], &p[k], &g, ALL_GRADS)?;
            lap(&format!("fc{} bwd", j + 1))?;
            grads[k] = Some(l.weight.ok_or_else(|| missing("no weight gradient"))?);
            grads[k + 1] = Some(l.bias.ok_or_else(|| missing("no bias gradient"))?);
            g = l.input.ok_or_else(|| missing("no input gradient"))?;
        }
        g = g.reshape(pooled.dims())?;
        for i in (0..convs).rev() {
            let s = &sigmoids[i];
            let gs = d.pool2d_backward(s.dims(), &g, None, &pool)?;
            lap(&format!("pool{} bwd", i + 1))?;
            let ga = d.activation_backward(s, &gs, sig)?;
            lap(&format!("sigmoid{} bwd", i + 1))?;
            let wanted = GradsWanted {
                input: i > 0,
                ..ALL_GRADS
            };
            let c = d.conv2d_backward(&inputs[i], &p[2 * i], &ga, &conv_spec(i), wanted)?;
            lap(&format!("conv{} bwd", i + 1))?;
            grads[2 * i] = Some(c.weight.ok_or_else(|| missing("no weight gradient"))?);
            grads[2 * i + 1] = Some(c.bias.ok_or_else(|| missing("no bias gradient"))?);
            if i > 0 {
                g = c.input.ok_or_else(|| missing("no input gradient"))?;
            }
        }

        // SGD.
        let sgd = SgdConfig::plain(lr);
        for (param, grad) in self.params.iter_mut().zip(grads) {
            let grad = grad.ok_or_else(|| missing("a parameter gradient"))?;
            d.sgd_step(&sgd, param, &grad, None)?;
        }
        lap("sgd")?;
        Ok(StepScalars {
            loss: ce.loss,
            correct: ce.correct,
        })
    }
}
