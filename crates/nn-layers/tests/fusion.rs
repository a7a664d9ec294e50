//! `Sequential` fuses each activation into the `Conv2d` or `Linear` before it, and a pooling
//! layer after a conv's activation (both LeNets): the same output and gradients as running
//! every child on its own (bit for bit on the host backends, within
//! rounding on the GPU), with fewer kernels and no intermediate tensors.

use autograd::{Gradients, Tape};
use conv_kernels::{Conv2dSpec, Device};
use fovea_test_support::{TestResult, check_close, test_device};
use nn_layers::layers::{Conv2d, Flatten, Linear, Tanh};
use nn_layers::{Module, Sequential, lenet, loss};
use tensor::{SeededRng, Tensor};

/// The loss, logits and every parameter gradient of one step, fused or not.
fn step(
    dev: &Device,
    net: &Sequential,
    x: &Tensor,
    labels: &[u32],
    fused: bool,
) -> TestResult<(Tensor, Vec<Tensor>, usize)> {
    let tape = Tape::new(dev);
    let input = tape.constant(dev.upload(x)?);
    let logits = if fused {
        net.forward(&input)?
    } else {
        net.forward_unfused(&input)?
    };
    let out = loss::cross_entropy(&logits, &dev.upload_indices(labels)?)?;
    let nodes = tape.len();
    let grads: Gradients = out.loss.backward()?;
    let mut got = vec![dev.to_host(out.loss.value())?];
    for (name, p) in net.named_parameters() {
        let g = grads.param(&p).ok_or(format!("no gradient for {name}"))?;
        got.push(dev.to_host(g)?);
    }
    Ok((dev.to_host(logits.value())?, got, nodes))
}

fn fused_sequential_matches_unfused(dev: &Device) -> TestResult {
    let mut rng = SeededRng::new(3);
    // Sigmoid (seed LeNet), ReLU (modern), and tanh after a strided conv without bias.
    let tanh_net = Sequential::new()
        .with(Conv2d::with_options(
            dev,
            &mut rng,
            1,
            4,
            [3, 3],
            Conv2dSpec::new(2, 1),
            false,
        )?)
        .with(Tanh)
        .with(Flatten)
        .with(Linear::new(dev, &mut rng, 4 * 14 * 14, 10)?)
        .with(Tanh);
    let nets: [(&str, Sequential); 3] = [
        ("seed", lenet::build(lenet::Variant::Seed, dev, &mut rng)?),
        (
            "modern",
            lenet::build(lenet::Variant::Modern, dev, &mut rng)?,
        ),
        ("tanh", tanh_net),
    ];
    let x = Tensor::rand_uniform(&[8, 1, 28, 28], 0.0, 1.0, &mut rng)?;
    let labels: Vec<u32> = (0..8).map(|i| i % 10).collect();
    for (name, net) in nets {
        let (y_fused, g_fused, nodes_fused) = step(dev, &net, &x, &labels, true)?;
        let (y_plain, g_plain, nodes_plain) = step(dev, &net, &x, &labels, false)?;
        assert!(
            nodes_fused < nodes_plain,
            "{name}: fusion should record fewer ops ({nodes_fused} vs {nodes_plain})"
        );
        let exact = !matches!(dev, Device::Gpu(_));
        for (what, got, want) in std::iter::once(("logits", &y_fused, &y_plain)).chain(
            g_fused
                .iter()
                .zip(&g_plain)
                .map(|(g, w)| ("gradient", g, w)),
        ) {
            if exact {
                assert_eq!(got.data(), want.data(), "{name} {what} on {}", dev.name());
            } else {
                check_close(dev, &format!("{name} {what}"), got, want, 1e-5, 1e-6)?;
            }
        }
    }
    Ok(())
}
test_device!(fused_sequential_matches_unfused: reference, cpu, gpu);
