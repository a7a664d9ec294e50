//! Criterion benchmarks for Fovea's kernels and training steps, and the pieces they share.
//!
//! The benchmarks live in `benches/` of this package; run them with `cargo bench -p fovea-benches`
//! (add a filter such as `-- conv2` to run a subset). Every group iterates over
//! [`bench_devices`], so a new backend is benchmarked by adding it there.
//!
//! ```
//! use fovea_benches::{SeedLenet, bench_devices};
//! use tensor::SeededRng;
//!
//! let (_, dev) = bench_devices().pop().unwrap();
//! let mut net = SeedLenet::new(&dev, &mut SeededRng::new(0))?;
//! let (x, labels) = SeedLenet::random_batch(&dev, 4, &mut SeededRng::new(1))?;
//! let loss = net.train_step(&x, &labels, 0.9)?;
//! assert!(loss.is_finite());
//! # Ok::<(), conv_kernels::KernelError>(())
//! ```

use conv_kernels::{
    Activation, Conv2dSpec, Device, DeviceTensor, IndexTensor, Pool2dSpec, PoolKind, Result,
    SgdConfig,
};
use tensor::{SeededRng, Tensor};

/// The devices every benchmark group runs on, with the name used in benchmark ids.
///
/// The reference is first; heavy groups run it at a smaller batch (see each bench).
/// A GPU (software adapters such as llvmpipe included) is added when one exists; otherwise the
/// reason is printed once and the GPU is left out. `FOVEA_DEVICE=cpu` leaves it out too.
pub fn bench_devices() -> Vec<(String, Device)> {
    let mut d = vec![
        ("reference".to_string(), Device::Reference),
        ("cpu".to_string(), Device::cpu()),
    ];
    if std::env::var("FOVEA_DEVICE").is_ok_and(|v| v.eq_ignore_ascii_case("cpu")) {
        return d;
    }
    match Device::gpu() {
        Ok(gpu) => d.push(("gpu".to_string(), gpu)),
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("benchmarks without a GPU: {e}"));
        }
    }
    d
}

/// Waits until `dev` has finished every op issued so far (GPU ops are only recorded when they
/// return), then hands `value` back: benchmark bodies wrap their result in it so the GPU's
/// execution time is measured, not just the recording.
pub fn synced<T>(dev: &Device, value: T) -> T {
    dev.synchronize().expect("device failed while benchmarking");
    value
}

/// The d2l seed LeNet: Conv(1→6, 5, pad 2) + Sigmoid + AvgPool(2, 2) + Conv(6→16, 5) + Sigmoid +
/// AvgPool(2, 2) + Flatten + Linear(400→120) + Sigmoid + Linear(120→84) + Sigmoid +
/// Linear(84→10), built directly from [`Device`] ops (no autograd).
pub struct SeedLenet {
    dev: Device,
    /// Parameters in PyTorch order: conv1 w/b, conv2 w/b, fc1 w/b, fc2 w/b, fc3 w/b.
    params: Vec<DeviceTensor>,
}

/// FLOPs of one seed-LeNet training step per image (forward, backward without conv1's input
/// gradient, SGD), counting a multiply-add as two.
pub const SEED_LENET_STEP_FLOPS_PER_IMAGE: u64 = {
    let conv1 = 2 * 6 * 28 * 28 * 25;
    let conv2 = 2 * 16 * 10 * 10 * 150;
    let fc = 2 * (400 * 120 + 120 * 84 + 84 * 10);
    2 * conv1 + 3 * conv2 + 3 * fc
};

impl SeedLenet {
    /// Parameters drawn uniformly in ±1/sqrt(fan_in) (PyTorch's default scale).
    pub fn new(dev: &Device, rng: &mut SeededRng) -> Result<Self> {
        let shapes: [(&[usize], usize); 10] = [
            (&[6, 1, 5, 5], 25),
            (&[6], 25),
            (&[16, 6, 5, 5], 150),
            (&[16], 150),
            (&[120, 400], 400),
            (&[120], 400),
            (&[84, 120], 120),
            (&[84], 120),
            (&[10, 84], 84),
            (&[10], 84),
        ];
        let params = shapes
            .iter()
            .map(|(dims, fan_in)| {
                let bound = 1.0 / (*fan_in as f32).sqrt();
                dev.upload_owned(Tensor::rand_uniform(dims, -bound, bound, rng)?)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            dev: dev.clone(),
            params,
        })
    }

    /// A batch of `n` random 28×28 images and labels on `dev`.
    pub fn random_batch(
        dev: &Device,
        n: usize,
        rng: &mut SeededRng,
    ) -> Result<(DeviceTensor, IndexTensor)> {
        let x = dev.upload_owned(Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 1.0, rng)?)?;
        let labels: Vec<u32> = (0..n).map(|_| rng.below(10) as u32).collect();
        Ok((x, dev.upload_indices(&labels)?))
    }

    /// One training step (forward, backward, plain SGD with learning rate `lr`); returns the
    /// mean loss of the batch (read back, as a training loop would).
    pub fn train_step(&mut self, x: &DeviceTensor, labels: &IndexTensor, lr: f32) -> Result<f32> {
        let d = &self.dev;
        let p = &self.params;
        let n = x.dims()[0];
        let sig = Activation::Sigmoid;
        let pool = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0);
        let (c1, c2) = (Conv2dSpec::new(1, 2), Conv2dSpec::new(1, 0));
        // Forward.
        let s1 = d.activation(&d.conv2d(x, &p[0], Some(&p[1]), &c1)?, sig)?;
        let p1 = d.pool2d(&s1, &pool)?.output;
        let s2 = d.activation(&d.conv2d(&p1, &p[2], Some(&p[3]), &c2)?, sig)?;
        let p2 = d.pool2d(&s2, &pool)?.output;
        let f = p2.reshape(&[n, 400])?;
        let s3 = d.activation(&d.linear(&f, &p[4], Some(&p[5]))?, sig)?;
        let s4 = d.activation(&d.linear(&s3, &p[6], Some(&p[7]))?, sig)?;
        let logits = d.linear(&s4, &p[8], Some(&p[9]))?;
        let ce = d.softmax_cross_entropy(&logits, labels, true)?;
        // Backward.
        let l5 = d.linear_backward(
            &s4,
            &p[8],
            ce.grad_logits
                .as_ref()
                .ok_or_else(|| missing("no logits gradient"))?,
            conv_kernels::GradsWanted {
                input: true,
                weight: true,
                bias: true,
            },
        )?;
        let l4 = d.linear_backward(
            &s3,
            &p[6],
            &d.activation_backward(
                &s4,
                l5.input
                    .as_ref()
                    .ok_or_else(|| missing("no input gradient"))?,
                sig,
            )?,
            conv_kernels::GradsWanted {
                input: true,
                weight: true,
                bias: true,
            },
        )?;
        let l3 = d.linear_backward(
            &f,
            &p[4],
            &d.activation_backward(
                &s3,
                l4.input
                    .as_ref()
                    .ok_or_else(|| missing("no input gradient"))?,
                sig,
            )?,
            conv_kernels::GradsWanted {
                input: true,
                weight: true,
                bias: true,
            },
        )?;
        let g_p2 = l3
            .input
            .as_ref()
            .ok_or_else(|| missing("no input gradient"))?
            .reshape(p2.dims())?;
        let g_s2 = d.pool2d_backward(s2.dims(), &g_p2, None, &pool)?;
        let g_a2 = d.activation_backward(&s2, &g_s2, sig)?;
        let k2 = d.conv2d_backward(
            &p1,
            &p[2],
            &g_a2,
            &c2,
            conv_kernels::GradsWanted {
                input: true,
                weight: true,
                bias: true,
            },
        )?;
        let g_p1 = k2.input.ok_or_else(|| missing("conv2 input gradient"))?;
        let g_s1 = d.pool2d_backward(s1.dims(), &g_p1, None, &pool)?;
        let g_a1 = d.activation_backward(&s1, &g_s1, sig)?;
        let k1 = d.conv2d_backward(
            x,
            &p[0],
            &g_a1,
            &c1,
            conv_kernels::GradsWanted {
                input: false,
                weight: true,
                bias: true,
            },
        )?;
        // SGD.
        let grads = [
            k1.weight.ok_or_else(|| missing("no weight gradient"))?,
            k1.bias.ok_or_else(|| missing("conv1 bias gradient"))?,
            k2.weight.ok_or_else(|| missing("no weight gradient"))?,
            k2.bias.ok_or_else(|| missing("conv2 bias gradient"))?,
            l3.weight.ok_or_else(|| missing("no weight gradient"))?,
            l3.bias.ok_or_else(|| missing("fc1 bias gradient"))?,
            l4.weight.ok_or_else(|| missing("no weight gradient"))?,
            l4.bias.ok_or_else(|| missing("fc2 bias gradient"))?,
            l5.weight.ok_or_else(|| missing("no weight gradient"))?,
            l5.bias.ok_or_else(|| missing("fc3 bias gradient"))?,
        ];
        let sgd = SgdConfig::plain(lr);
        for (param, grad) in self.params.iter_mut().zip(&grads) {
            d.sgd_step(&sgd, param, grad, None)?;
        }
        d.read_scalar(&ce.loss)
    }
}

fn missing(what: &str) -> conv_kernels::KernelError {
    conv_kernels::KernelError::InvalidSpec {
        op: "seed_lenet",
        reason: format!("{what} was not returned"),
    }
}
