//! On the GPU a training step reads back nothing but the loss and correct-count scalars, in
//! one submission and a bounded number of kernel launches, proven with the backend's transfer
//! and command counters.

use autograd::Tape;
use conv_kernels::{AdamConfig, Device, SgdConfig};
use fovea_test_support::test_device;
use nn_layers::{Adam, Module, Optimizer, Sgd, lenet, loss};
use tensor::{SeededRng, Tensor};

fn a_gpu_training_step_is_one_submission_reading_back_only_two_scalars(dev: &Device) {
    let dev = dev.clone();
    eprintln!("transfer counters on {}", dev.name());
    for variant in [lenet::Variant::Seed, lenet::Variant::Modern] {
        let mut rng = SeededRng::new(0);
        let net = lenet::build(variant, &dev, &mut rng).unwrap();
        let mut opt: Box<dyn Optimizer> = match variant {
            lenet::Variant::Seed => Box::new(
                Sgd::new(
                    &dev,
                    net.named_parameters(),
                    SgdConfig {
                        momentum: 0.9,
                        ..SgdConfig::plain(0.1)
                    },
                )
                .unwrap(),
            ),
            lenet::Variant::Modern => {
                Box::new(Adam::new(&dev, net.named_parameters(), AdamConfig::default()).unwrap())
            }
        };
        let x = Tensor::rand_uniform(&[64, 1, 28, 28], 0.0, 1.0, &mut rng).unwrap();
        let x = dev.upload(&x).unwrap();
        let labels: Vec<u32> = (0..64).map(|i| i % 10).collect();
        let labels = dev.upload_indices(&labels).unwrap();
        dev.synchronize().unwrap();

        let mut dispatches = Vec::new();
        for step in 0..3 {
            let (before, commands) = (dev.transfer_stats(), dev.command_stats());
            let tape = Tape::new(&dev);
            let out =
                loss::cross_entropy(&net.forward(&tape.constant(x.clone())).unwrap(), &labels)
                    .unwrap();
            let grads = out.loss.backward().unwrap();
            opt.step(&grads).unwrap();
            let scalars = dev.read_scalars(&[out.loss.value(), &out.correct]).unwrap();
            let (l, c) = (scalars[0], scalars[1]);
            let (after, commands_after) = (dev.transfer_stats(), dev.command_stats());
            assert!(l.is_finite() && (0.0..=64.0).contains(&c));
            assert_eq!(
                after.downloads - before.downloads,
                1,
                "{variant:?} step {step}: {before:?} -> {after:?}"
            );
            assert_eq!(after.download_bytes - before.download_bytes, 8);
            assert_eq!(
                after.uploads, before.uploads,
                "nothing uploaded in the step"
            );
            assert_eq!(
                commands_after.submits - commands.submits,
                1,
                "{variant:?} step {step}: one submission per step"
            );
            dispatches.push(commands_after.dispatches - commands.dispatches);
        }
        eprintln!("{variant:?}: {dispatches:?} dispatches per step");
        assert!(dispatches[0] > 0);
        // At most half the 52 launches of the seed step before fusion, with the one launch
        // that gathers a batch from a training set held on the device (`lenet train`).
        let most = match variant {
            lenet::Variant::Seed => 25,
            lenet::Variant::Modern => 26,
        };
        assert!(
            dispatches[0] <= most,
            "{variant:?}: {dispatches:?} kernels per step, at most {most} expected"
        );
        assert!(
            dispatches.iter().all(|&d| d == dispatches[0]),
            "{variant:?}: the same step launched {dispatches:?} kernels"
        );
    }
}
test_device!(a_gpu_training_step_is_one_submission_reading_back_only_two_scalars: gpu);
