//! Invalid inputs give a typed error naming the op, on every device (each its own test), and
//! never a panic.

use conv_kernels::{
    AdamConfig, Conv2dSpec, Device, KernelError, MatmulSpec, Pool2dSpec, PoolKind, SgdConfig,
};
use fovea_test_support::{TestResult, test_device};

/// Which error variant a case must produce.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Shape,
    Spec,
}

fn expect(
    dev: &Device,
    what: &str,
    want: Want,
    op: &str,
    r: conv_kernels::Result<impl Sized>,
) -> TestResult {
    let err = match r {
        Ok(_) => return Err(format!("{what} on {}: expected an error, got Ok", dev.name()).into()),
        Err(e) => e,
    };
    let ok = match (&err, want) {
        (KernelError::Shape { op: o, .. }, Want::Shape)
        | (KernelError::InvalidSpec { op: o, .. }, Want::Spec) => o.contains(op),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "{what} on {}: expected a {want:?} error from `{op}`, got {err:?}",
            dev.name()
        )
        .into());
    }
    // Messages say what was expected and what was found.
    if want == Want::Shape
        && !(err.to_string().contains("expected") && err.to_string().contains("found"))
    {
        return Err(format!("{what}: message lacks expected/found: {err}").into());
    }
    Ok(())
}

fn conv2d_rejects_invalid_inputs(d: &Device) -> TestResult {
    let x = d.zeros(&[2, 4, 8, 8])?;
    let w = d.zeros(&[6, 4, 3, 3])?;
    let conv = |x: &_, w: &_, b: Option<&_>, s: Conv2dSpec| d.conv2d(x, w, b, &s);
    let groups3 = Conv2dSpec {
        groups: 3,
        ..Default::default()
    };
    expect(
        d,
        "channels not divisible by groups",
        Want::Spec,
        "conv2d",
        conv(&x, &d.zeros(&[6, 1, 3, 3])?, None, groups3),
    )?;
    let groups4 = Conv2dSpec {
        groups: 4,
        ..Default::default()
    };
    expect(
        d,
        "out channels not divisible by groups",
        Want::Spec,
        "conv2d",
        conv(&x, &d.zeros(&[6, 1, 3, 3])?, None, groups4),
    )?;
    expect(
        d,
        "zero groups",
        Want::Spec,
        "conv2d",
        conv(
            &x,
            &w,
            None,
            Conv2dSpec {
                groups: 0,
                ..Default::default()
            },
        ),
    )?;
    expect(
        d,
        "zero stride",
        Want::Spec,
        "conv2d",
        conv(&x, &w, None, Conv2dSpec::new(0, 0)),
    )?;
    expect(
        d,
        "zero dilation",
        Want::Spec,
        "conv2d",
        conv(
            &x,
            &w,
            None,
            Conv2dSpec {
                dilation: [1, 0],
                ..Default::default()
            },
        ),
    )?;
    expect(
        d,
        "kernel larger than padded input",
        Want::Shape,
        "conv2d",
        conv(&x, &d.zeros(&[6, 4, 11, 3])?, None, Conv2dSpec::new(1, 1)),
    )?;
    expect(
        d,
        "dilated kernel larger than input",
        Want::Shape,
        "conv2d",
        conv(
            &x,
            &w,
            None,
            Conv2dSpec {
                dilation: [4, 1],
                ..Default::default()
            },
        ),
    )?;
    expect(
        d,
        "zero-size kernel",
        Want::Spec,
        "conv2d",
        conv(&x, &d.zeros(&[6, 4, 0, 3])?, None, Conv2dSpec::default()),
    )?;
    expect(
        d,
        "weight channels mismatch",
        Want::Shape,
        "conv2d",
        conv(&x, &d.zeros(&[6, 3, 3, 3])?, None, Conv2dSpec::default()),
    )?;
    expect(
        d,
        "bias length",
        Want::Shape,
        "conv2d",
        conv(&x, &w, Some(&d.zeros(&[5])?), Conv2dSpec::default()),
    )?;
    expect(
        d,
        "bias rank",
        Want::Shape,
        "conv2d",
        conv(&x, &w, Some(&d.zeros(&[6, 1])?), Conv2dSpec::default()),
    )?;
    expect(
        d,
        "input rank",
        Want::Shape,
        "conv2d",
        conv(&d.zeros(&[4, 8, 8])?, &w, None, Conv2dSpec::default()),
    )?;
    expect(
        d,
        "weight rank",
        Want::Shape,
        "conv2d",
        conv(&x, &d.zeros(&[6, 36])?, None, Conv2dSpec::default()),
    )?;
    let gy_bad = d.zeros(&[2, 6, 5, 5])?;
    expect(
        d,
        "grad_y shape",
        Want::Shape,
        "conv2d_backward",
        d.conv2d_backward(
            &x,
            &w,
            &gy_bad,
            &Conv2dSpec::default(),
            conv_kernels::GradsWanted {
                input: true,
                weight: true,
                bias: true,
            },
        ),
    )?;
    let gy_batch = d.zeros(&[3, 6, 6, 6])?;
    expect(
        d,
        "grad_y batch",
        Want::Shape,
        "conv2d_backward",
        d.conv2d_backward(
            &x,
            &w,
            &gy_batch,
            &Conv2dSpec::default(),
            conv_kernels::GradsWanted {
                input: true,
                weight: true,
                bias: true,
            },
        ),
    )?;
    Ok(())
}
test_device!(conv2d_rejects_invalid_inputs);

fn pool2d_rejects_invalid_inputs(d: &Device) -> TestResult {
    let x = d.zeros(&[2, 3, 6, 6])?;
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let op = Pool2dSpec::new(kind, 2, 2, 0).op_name();
        expect(
            d,
            "zero kernel",
            Want::Spec,
            op,
            d.pool2d(&x, &Pool2dSpec::new(kind, 0, 2, 0)),
        )?;
        expect(
            d,
            "zero stride",
            Want::Spec,
            op,
            d.pool2d(&x, &Pool2dSpec::new(kind, 2, 0, 0)),
        )?;
        expect(
            d,
            "padding over half the kernel",
            Want::Spec,
            op,
            d.pool2d(&x, &Pool2dSpec::new(kind, 2, 2, 2)),
        )?;
        expect(
            d,
            "window larger than input",
            Want::Shape,
            op,
            d.pool2d(&x, &Pool2dSpec::new(kind, 7, 1, 0)),
        )?;
        expect(
            d,
            "input rank",
            Want::Shape,
            op,
            d.pool2d(&d.zeros(&[3, 6, 6])?, &Pool2dSpec::new(kind, 2, 2, 0)),
        )?;
        let spec = Pool2dSpec::new(kind, 2, 2, 0);
        let out = d.pool2d(&x, &spec)?;
        expect(
            d,
            "grad_y shape",
            Want::Shape,
            "pool2d_backward",
            d.pool2d_backward(
                &[2, 3, 6, 6],
                &d.zeros(&[2, 3, 2, 2])?,
                out.argmax.as_ref(),
                &spec,
            ),
        )?;
    }
    let spec = Pool2dSpec::new(PoolKind::Max, 2, 2, 0);
    let gy = d.zeros(&[2, 3, 3, 3])?;
    expect(
        d,
        "max pool backward without argmax",
        Want::Shape,
        "pool2d_backward",
        d.pool2d_backward(&[2, 3, 6, 6], &gy, None, &spec),
    )?;
    let short = d.upload_indices(&[0, 1, 2])?;
    expect(
        d,
        "argmax of the wrong length",
        Want::Shape,
        "pool2d_backward",
        d.pool2d_backward(&[2, 3, 6, 6], &gy, Some(&short), &spec),
    )?;
    Ok(())
}
test_device!(pool2d_rejects_invalid_inputs);

fn matmul_and_linear_reject_invalid_inputs(d: &Device) -> TestResult {
    let a = d.zeros(&[4, 3])?;
    let spec = MatmulSpec::default();
    expect(
        d,
        "inner dimensions",
        Want::Shape,
        "matmul",
        d.matmul(&a, &d.zeros(&[4, 5])?, None, &spec),
    )?;
    let tb = MatmulSpec {
        trans_a: false,
        trans_b: true,
    };
    expect(
        d,
        "inner dimensions (trans_b)",
        Want::Shape,
        "matmul",
        d.matmul(&a, &d.zeros(&[5, 4])?, None, &tb),
    )?;
    expect(
        d,
        "bias length",
        Want::Shape,
        "matmul",
        d.matmul(&a, &d.zeros(&[3, 5])?, Some(&d.zeros(&[4])?), &spec),
    )?;
    expect(
        d,
        "rank",
        Want::Shape,
        "matmul",
        d.matmul(&d.zeros(&[4, 3, 1])?, &d.zeros(&[3, 5])?, None, &spec),
    )?;
    expect(
        d,
        "linear weight",
        Want::Shape,
        "matmul",
        d.linear(&a, &d.zeros(&[5, 4])?, None),
    )?;
    expect(
        d,
        "linear_backward grad_y",
        Want::Shape,
        "matmul",
        d.linear_backward(
            &a,
            &d.zeros(&[5, 3])?,
            &d.zeros(&[4, 4])?,
            conv_kernels::GradsWanted {
                input: true,
                weight: true,
                bias: true,
            },
        ),
    )?;
    Ok(())
}
test_device!(matmul_and_linear_reject_invalid_inputs);

fn elementwise_and_loss_reject_invalid_inputs(d: &Device) -> TestResult {
    let a = d.zeros(&[4, 3])?;
    let b = d.zeros(&[3, 4])?;
    expect(d, "add shapes", Want::Shape, "add", d.add(&a, &b))?;
    let mut acc = a.clone();
    expect(
        d,
        "add_assign shapes",
        Want::Shape,
        "add_assign",
        d.add_assign(&mut acc, &b),
    )?;
    expect(
        d,
        "scale_by non-scalar",
        Want::Shape,
        "scale_by",
        d.scale_by(&a, &b),
    )?;
    expect(
        d,
        "read_scalar non-scalar",
        Want::Shape,
        "read_scalar",
        d.read_scalar(&a),
    )?;
    let act = conv_kernels::Activation::Sigmoid;
    expect(
        d,
        "activation_backward shapes",
        Want::Shape,
        "sigmoid",
        d.activation_backward(&a, &b, act),
    )?;
    expect(
        d,
        "reshape count",
        Want::Shape,
        "reshape",
        a.reshape(&[5, 2]),
    )?;
    let logits = d.zeros(&[4, 10])?;
    let ce = "softmax_cross_entropy";
    expect(
        d,
        "labels count",
        Want::Shape,
        ce,
        d.softmax_cross_entropy(&logits, &d.upload_indices(&[1, 2, 3])?, true),
    )?;
    expect(
        d,
        "label out of range",
        Want::Shape,
        ce,
        d.softmax_cross_entropy(&logits, &d.upload_indices(&[1, 2, 10, 0])?, true),
    )?;
    expect(
        d,
        "logits rank",
        Want::Shape,
        ce,
        d.softmax_cross_entropy(&d.zeros(&[4])?, &d.upload_indices(&[1, 2, 3, 0])?, true),
    )?;
    expect(
        d,
        "empty logits",
        Want::Shape,
        ce,
        d.softmax_cross_entropy(&d.zeros(&[0, 10])?, &d.upload_indices(&[])?, true),
    )?;
    Ok(())
}
test_device!(elementwise_and_loss_reject_invalid_inputs);

fn optimizers_reject_invalid_inputs(d: &Device) -> TestResult {
    let mut p = d.zeros(&[5])?;
    let g = d.zeros(&[5])?;
    let sgd = "sgd_step";
    expect(
        d,
        "negative lr",
        Want::Spec,
        sgd,
        d.sgd_step(&SgdConfig::plain(-1.0), &mut p, &g, None),
    )?;
    expect(
        d,
        "NaN lr",
        Want::Spec,
        sgd,
        d.sgd_step(&SgdConfig::plain(f32::NAN), &mut p, &g, None),
    )?;
    let nesterov = SgdConfig {
        nesterov: true,
        ..SgdConfig::plain(0.1)
    };
    expect(
        d,
        "nesterov without momentum",
        Want::Spec,
        sgd,
        d.sgd_step(&nesterov, &mut p, &g, None),
    )?;
    let mom = SgdConfig {
        momentum: 0.9,
        ..SgdConfig::plain(0.1)
    };
    expect(
        d,
        "missing momentum buffer",
        Want::Shape,
        sgd,
        d.sgd_step(&mom, &mut p, &g, None),
    )?;
    let mut bad_buf = d.zeros(&[4])?;
    expect(
        d,
        "momentum buffer shape",
        Want::Shape,
        sgd,
        d.sgd_step(&mom, &mut p, &g, Some(&mut bad_buf)),
    )?;
    expect(
        d,
        "grad shape",
        Want::Shape,
        sgd,
        d.sgd_step(&SgdConfig::plain(0.1), &mut p, &d.zeros(&[6])?, None),
    )?;
    let (mut m, mut v) = (d.zeros(&[5])?, d.zeros(&[5])?);
    let adam = "adam_step";
    expect(
        d,
        "step 0",
        Want::Spec,
        adam,
        d.adam_step(&AdamConfig::default(), 0, &mut p, &g, &mut m, &mut v),
    )?;
    let bad_beta = AdamConfig {
        beta1: 1.0,
        ..Default::default()
    };
    expect(
        d,
        "beta1 = 1",
        Want::Spec,
        adam,
        d.adam_step(&bad_beta, 1, &mut p, &g, &mut m, &mut v),
    )?;
    let mut v_bad = d.zeros(&[6])?;
    expect(
        d,
        "v shape",
        Want::Shape,
        adam,
        d.adam_step(&AdamConfig::default(), 1, &mut p, &g, &mut m, &mut v_bad),
    )?;
    Ok(())
}
test_device!(optimizers_reject_invalid_inputs);

/// Degenerate but valid shapes (empty batch, 1×1 everything) run without panicking.
fn degenerate_shapes_do_not_panic(d: &Device) -> TestResult {
    let spec = Conv2dSpec::default();
    let y = d.conv2d(
        &d.zeros(&[0, 2, 3, 3])?,
        &d.zeros(&[4, 2, 3, 3])?,
        Some(&d.zeros(&[4])?),
        &spec,
    )?;
    assert_eq!(y.dims(), &[0, 4, 1, 1]);
    let g = d.conv2d_backward(
        &d.zeros(&[0, 2, 3, 3])?,
        &d.zeros(&[4, 2, 3, 3])?,
        &y,
        &spec,
        conv_kernels::GradsWanted {
            input: true,
            weight: true,
            bias: true,
        },
    )?;
    assert_eq!(
        d.to_host(g.weight.as_ref().expect("asked"))?.data(),
        &[0.0; 72]
    );
    let y = d.conv2d(
        &d.full(&[1, 1, 1, 1], 2.0)?,
        &d.full(&[1, 1, 1, 1], 3.0)?,
        Some(&d.full(&[1], 1.0)?),
        &spec,
    )?;
    assert_eq!(d.read_scalar(&y)?, 7.0);
    let p = d.pool2d(
        &d.zeros(&[0, 3, 4, 4])?,
        &Pool2dSpec::new(PoolKind::Max, 2, 2, 0),
    )?;
    assert_eq!(p.output.dims(), &[0, 3, 2, 2]);
    let c = d.matmul(
        &d.zeros(&[3, 0])?,
        &d.zeros(&[0, 2])?,
        Some(&d.full(&[2], 1.5)?),
        &MatmulSpec::default(),
    )?;
    assert_eq!(d.to_host(&c)?.data(), &[1.5; 6]);
    assert_eq!(d.read_scalar(&d.sum(&d.zeros(&[0])?)?)?, 0.0);
    Ok(())
}
test_device!(degenerate_shapes_do_not_panic);
