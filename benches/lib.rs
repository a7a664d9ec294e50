//! Criterion benchmarks for Fovea's kernels and training steps, and the pieces they share.
//!
//! The benchmarks live in `benches/` of this package; run them with `cargo bench -p fovea-benches`
//! (add a filter such as `-- conv2` to run a subset). Every group iterates over
//! [`bench_devices`], so a new backend is benchmarked by adding it there.
//!
//! The hand-written training step the `seed_lenet_train_step` groups time is test-support's
//! (`fovea_test_support::lenet`), the one the `gpu_step` example and the GPU tests run.
//!
//! ```
//! use fovea_benches::bench_devices;
//! use fovea_test_support::lenet::{Arch, HandNet};
//! use tensor::SeededRng;
//!
//! let (_, dev) = bench_devices().pop().unwrap();
//! let mut net = HandNet::new(&dev, Arch::seed_lenet(), &mut SeededRng::new(0))?;
//! let (x, labels) = net.random_batch(4, &mut SeededRng::new(1))?;
//! let loss = net.train_step(&x, &labels, 0.9)?;
//! assert!(loss.is_finite());
//! # Ok::<(), conv_kernels::KernelError>(())
//! ```

use autograd::Tape;
use conv_kernels::Device;
use conv_kernels::{AdamConfig, SgdConfig};
use fovea_test_support::TestDevice;
use nn_layers::optim::{Adam, Sgd};
use nn_layers::{Module, Optimizer, Sequential, lenet, nin, resnet};
use tensor::SeededRng;
use tensor::Tensor;

/// The devices every benchmark group runs on, with the name used in benchmark ids
/// (`reference`, `cpu`, `gpu`): test-support's [`TestDevice::ALL`].
///
/// The reference is first; heavy groups run it at a smaller batch (see each bench).
/// A GPU (software adapters such as llvmpipe included) is added when one exists; otherwise the
/// reason is printed once and the GPU is left out (`FOVEA_DEVICE=cpu` leaves it out too; with
/// `FOVEA_REQUIRE_GPU=1` a missing GPU is an error, as in the tests).
pub fn bench_devices() -> Vec<(String, Device)> {
    TestDevice::ALL
        .into_iter()
        .filter_map(|d| Some((d.name().to_string(), d.open()?)))
        .collect()
}

/// Waits until `dev` has finished every op issued so far (GPU ops are only recorded when they
/// return), then hands `value` back: benchmark bodies wrap their result in it so the GPU's
/// execution time is measured, not just the recording.
pub fn synced<T>(dev: &Device, value: T) -> T {
    dev.synchronize().expect("device failed while benchmarking");
    value
}

/// One training step as `lenet train` runs it: forward on a fresh tape, cross-entropy,
/// backward, the optimizer's step, and the loss and correct count read back (two scalars), on
/// the device's workers ([`Device::run_on_workers`]).
pub fn app_step(
    dev: &Device,
    model: &dyn Module,
    opt: &mut dyn Optimizer,
    images: &Tensor,
    labels: &[u32],
) -> nn_layers::Result<f32> {
    dev.run_on_workers(move || step_here(dev, model, opt, images, labels))
}

/// [`app_step`]'s body, on the calling thread.
fn step_here(
    dev: &Device,
    model: &dyn Module,
    opt: &mut dyn Optimizer,
    images: &Tensor,
    labels: &[u32],
) -> nn_layers::Result<f32> {
    let tape = Tape::new(dev);
    let x = tape.constant(dev.upload(images)?);
    let labels = dev.upload_indices(labels)?;
    let out = model.forward(&x)?.cross_entropy(&labels)?;
    let grads = out.loss.backward()?;
    opt.step(&grads)?;
    let scalars = dev.read_scalars(&[out.loss.value(), &out.correct])?;
    Ok(scalars[0])
}

/// The model `name` (`seed`, `modern`, `resnet-small`, `nin-small`) with its optimizer and
/// batch size as `lenet train`'s recipe has them: what `step_rate` and the `cnn_step` bench time.
pub fn recipe(
    name: &str,
    dev: &Device,
    rng: &mut SeededRng,
) -> nn_layers::Result<(Sequential, Box<dyn Optimizer>, usize)> {
    let sgd = |m: &Sequential, cfg| -> nn_layers::Result<Box<dyn Optimizer>> {
        Ok(Box::new(Sgd::new(dev, m.named_parameters(), cfg)?))
    };
    let adam = |m: &Sequential, lr| -> nn_layers::Result<Box<dyn Optimizer>> {
        let cfg = AdamConfig {
            lr,
            ..AdamConfig::default()
        };
        Ok(Box::new(Adam::new(dev, m.named_parameters(), cfg)?))
    };
    Ok(match name {
        "seed" => {
            let m = lenet::seed(dev, rng)?;
            let o = sgd(&m, SgdConfig::plain(0.9))?;
            (m, o, 256)
        }
        "modern" => {
            let m = lenet::modern(dev, rng)?;
            let o = adam(&m, 4e-3)?;
            (m, o, 256)
        }
        "resnet-small" => {
            let m = resnet::resnet_small(dev, rng)?;
            let cfg = SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
                nesterov: true,
            };
            let o = sgd(&m, cfg)?;
            (m, o, 128)
        }
        "nin-small" => {
            let m = nin::nin_small(dev, rng, 0.5)?;
            let o = adam(&m, 2e-3)?;
            (m, o, 128)
        }
        other => {
            return Err(nn_layers::NnError::Invalid {
                what: "recipe",
                reason: format!(
                    "unknown model {other:?} (expected seed, modern, resnet-small, nin-small)"
                ),
            });
        }
    })
}
