//! `gradcheck` for every differentiable op, on every device (each its own test).

use autograd::{GradcheckOptions, Var, gradcheck};
use conv_kernels::{
    Activation, AdaptiveAvgPool2dSpec, BatchNorm2dSpec, Conv2dSpec, Device, DropoutSpec,
    MatmulSpec, Pool2dSpec, PoolKind,
};
use fovea_test_support::test_device;
use tensor::{SeededRng, Tensor};

type R = Result<(), Box<dyn std::error::Error>>;

fn randn(dims: &[usize], seed: u64) -> Tensor {
    Tensor::randn(dims, &mut SeededRng::new(seed)).unwrap()
}

fn check(dev: &Device, inputs: &[Tensor], f: impl Fn(&[Var]) -> autograd::Result<Var>) -> R {
    let report = gradcheck(dev, inputs, f, &GradcheckOptions::default())?;
    assert_eq!(
        report.checked,
        inputs.iter().map(Tensor::numel).sum::<usize>()
    );
    Ok(())
}

fn conv2d_with_bias_stride_and_padding(dev: &Device) -> R {
    let spec = Conv2dSpec::new(2, 1);
    let ins = [
        randn(&[2, 3, 6, 5], 1),
        randn(&[4, 3, 3, 3], 2),
        randn(&[4], 3),
    ];
    check(dev, &ins, |v| v[0].conv2d(&v[1], Some(&v[2]), &spec))
}
test_device!(conv2d_with_bias_stride_and_padding);

fn conv2d_groups_dilation_no_bias(dev: &Device) -> R {
    let spec = Conv2dSpec {
        stride: [1, 2],
        padding: [1, 0],
        dilation: [2, 1],
        groups: 2,
    };
    let ins = [randn(&[1, 4, 7, 6], 4), randn(&[2, 2, 3, 2], 5)];
    check(dev, &ins, |v| v[0].conv2d(&v[1], None, &spec))
}
test_device!(conv2d_groups_dilation_no_bias);

fn avg_pool2d(dev: &Device) -> R {
    let spec = Pool2dSpec::new(PoolKind::Avg, 3, 2, 1);
    check(dev, &[randn(&[2, 2, 5, 5], 6)], |v| v[0].pool2d(&spec))
}
test_device!(avg_pool2d);

fn max_pool2d(dev: &Device) -> R {
    // Random normals are distinct with overwhelming probability, so no tie sits within eps.
    check(dev, &[randn(&[2, 2, 4, 6], 7)], |v| {
        v[0].max_pool2d(2, 2, 0)
    })?;
    let spec = Pool2dSpec::new(PoolKind::Max, 3, 2, 1);
    let opts = GradcheckOptions {
        eps: 1e-3,
        ..Default::default()
    };
    gradcheck(
        dev,
        &[randn(&[1, 2, 5, 5], 8)],
        |v| v[0].pool2d(&spec),
        &opts,
    )?;
    Ok(())
}
test_device!(max_pool2d);

fn conv2d_activation_pool2d(dev: &Device) -> R {
    // LeNet's conv → sigmoid → average pool, and a ReLU before max pooling (random normals
    // keep every pre-activation and window maximum away from its kink by more than eps).
    let spec = Conv2dSpec::new(1, 1);
    let ins = [
        randn(&[2, 2, 6, 6], 25),
        randn(&[3, 2, 3, 3], 26),
        randn(&[3], 27),
    ];
    let avg = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0);
    check(dev, &ins, |v| {
        v[0].conv2d_activation_pool2d(&v[1], Some(&v[2]), &spec, Activation::Sigmoid, &avg)
    })?;
    let max = Pool2dSpec::new(PoolKind::Max, 3, 2, 1);
    check(dev, &ins[..2], |v| {
        v[0].conv2d_activation_pool2d(&v[1], None, &spec, Activation::Tanh, &max)
    })
}
test_device!(conv2d_activation_pool2d);

fn linear_with_and_without_bias(dev: &Device) -> R {
    let ins = [randn(&[3, 5], 9), randn(&[4, 5], 10), randn(&[4], 11)];
    check(dev, &ins, |v| v[0].linear(&v[1], Some(&v[2])))?;
    check(dev, &ins[..2], |v| v[0].linear(&v[1], None))
}
test_device!(linear_with_and_without_bias);

fn matmul_every_transpose(dev: &Device) -> R {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { [4, 3] } else { [3, 4] };
        let b = if tb { [2, 4] } else { [4, 2] };
        let spec = MatmulSpec {
            trans_a: ta,
            trans_b: tb,
        };
        let ins = [randn(&a, 12), randn(&b, 13)];
        check(dev, &ins, |v| v[0].matmul(&v[1], &spec))?;
    }
    Ok(())
}
test_device!(matmul_every_transpose);

fn activations(dev: &Device) -> R {
    let x = [randn(&[3, 7], 14)];
    check(dev, &x, |v| v[0].sigmoid())?;
    check(dev, &x, |v| v[0].tanh())?;
    // Keep ReLU's inputs away from its kink at 0.
    let x = [x[0].map(|v| if v.abs() < 0.05 { v + 0.1 } else { v })];
    check(dev, &x, |v| v[0].relu())
}
test_device!(activations);

fn add_scale_reshape_flatten(dev: &Device) -> R {
    let ins = [randn(&[2, 3, 2], 15), randn(&[2, 3, 2], 16)];
    check(dev, &ins, |v| v[0].add(&v[1])?.scale(-1.5))?;
    check(dev, &ins[..1], |v| v[0].reshape(&[3, 4])?.sigmoid())?;
    check(dev, &ins[..1], |v| v[0].flatten(1)?.tanh())
}
test_device!(add_scale_reshape_flatten);

fn cross_entropy(dev: &Device) -> R {
    let labels = dev.upload_indices(&[0, 4, 2])?;
    check(dev, &[randn(&[3, 5], 17)], |v| {
        Ok(v[0].cross_entropy(&labels)?.loss)
    })
}
test_device!(cross_entropy);

fn dropout(dev: &Device) -> R {
    // The mask is a function of the seed: the same one for every evaluation.
    let spec = DropoutSpec { p: 0.4, seed: 11 };
    check(dev, &[randn(&[2, 3, 4], 18)], |v| v[0].dropout(&spec))
}
test_device!(dropout);

fn batch_norm2d(dev: &Device) -> R {
    let settings = [(true, None), (false, None), (true, Some(Activation::Tanh))];
    for (training, activation) in settings {
        let spec = BatchNorm2dSpec {
            training,
            activation,
            ..BatchNorm2dSpec::default()
        };
        let ins = [randn(&[3, 2, 3, 2], 23), randn(&[2], 24), randn(&[2], 25)];
        check(dev, &ins, |v| {
            // Fresh running statistics per evaluation: training updates them in place.
            let mut rm = dev.upload(&Tensor::from_vec(&[2], vec![0.1, -0.2])?)?;
            let mut rv = dev.upload(&Tensor::from_vec(&[2], vec![0.8, 1.5])?)?;
            v[0].batch_norm2d(&v[1], &v[2], &mut rm, &mut rv, &spec)
        })?;
    }
    Ok(())
}
test_device!(batch_norm2d);

fn batch_norm2d_residual(dev: &Device) -> R {
    let settings = [
        (true, None),
        (false, Some(Activation::Tanh)),
        (true, Some(Activation::Tanh)),
    ];
    for (training, activation) in settings {
        let spec = BatchNorm2dSpec {
            training,
            activation,
            ..BatchNorm2dSpec::default()
        };
        // Fresh running statistics per evaluation: training updates them in place.
        let stats = || -> autograd::Result<_> {
            Ok((
                dev.upload(&Tensor::from_vec(&[2], vec![0.1, -0.2])?)?,
                dev.upload(&Tensor::from_vec(&[2], vec![0.8, 1.5])?)?,
            ))
        };
        let ins = [
            randn(&[3, 2, 3, 2], 33),
            randn(&[2], 34),
            randn(&[2], 35),
            randn(&[3, 2, 3, 2], 36),
        ];
        check(dev, &ins, |v| {
            let (mut rm, mut rv) = stats()?;
            v[0].batch_norm2d_residual(&v[1], &v[2], &mut rm, &mut rv, &v[3], &spec)
        })?;
        // The input as its own residual (an identity shortcut): its gradient adds both paths.
        check(dev, &ins[..3], |v| {
            let (mut rm, mut rv) = stats()?;
            v[0].batch_norm2d_residual(&v[1], &v[2], &mut rm, &mut rv, &v[0], &spec)
        })?;
    }
    Ok(())
}
test_device!(batch_norm2d_residual);

fn adaptive_avg_pool2d(dev: &Device) -> R {
    let spec = AdaptiveAvgPool2dSpec::new(2, 3);
    check(dev, &[randn(&[2, 2, 5, 4], 26)], |v| {
        v[0].adaptive_avg_pool2d(&spec)
    })?;
    check(dev, &[randn(&[2, 3, 4, 4], 27)], |v| {
        v[0].global_avg_pool2d()
    })
}
test_device!(adaptive_avg_pool2d);

fn cat_of_channels(dev: &Device) -> R {
    let ins = [randn(&[2, 1, 3, 3], 28), randn(&[2, 3, 3, 3], 29)];
    check(dev, &ins, |v| Var::cat(&[&v[0], &v[1]], 1))
}
test_device!(cat_of_channels);

fn a_residual_connection(dev: &Device) -> R {
    // y = relu(conv(x) + x): the gradient of x accumulates through both paths.
    let ins = [randn(&[1, 2, 4, 4], 30), randn(&[2, 2, 3, 3], 31)];
    check(dev, &ins, |v| {
        v[0].conv2d(&v[1], None, &Conv2dSpec::new(1, 1))?
            .add(&v[0])?
            .tanh()
    })
}
test_device!(a_residual_connection);

fn a_small_network_end_to_end(dev: &Device) -> R {
    let labels = dev.upload_indices(&[1, 0])?;
    let ins = [
        randn(&[2, 1, 6, 6], 19),
        randn(&[3, 1, 3, 3], 20),
        randn(&[3], 21),
        randn(&[2, 12], 22),
    ];
    check(dev, &ins, |v| {
        let h = v[0]
            .conv2d(&v[1], Some(&v[2]), &Conv2dSpec::new(1, 0))?
            .sigmoid()?
            .avg_pool2d(2, 2, 0)?
            .flatten(1)?
            .linear(&v[3], None)?;
        Ok(h.cross_entropy(&labels)?.loss)
    })
}
test_device!(a_small_network_end_to_end);

#[test]
fn gradcheck_reports_a_wrong_gradient() {
    // A function whose "backward" is wrong: detach drops the path through the second input.
    let dev = Device::cpu();
    let ins = [randn(&[2, 2], 23), randn(&[2, 2], 24)];
    let err = gradcheck(
        &dev,
        &ins,
        |v| v[0].add(&v[1].detach().add(&v[1])?),
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("gradcheck: input 1"), "{err}");
}
