//! Tape semantics: accumulation, no_grad, errors.

use autograd::{AutogradError, Param, Tape};
use conv_kernels::{Conv2dSpec, Device, GpuOptions};
use fovea_test_support::{gpu_with_options, test_device};
use tensor::{SeededRng, Tensor};

type R = Result<(), Box<dyn std::error::Error>>;

fn t(dims: &[usize], seed: u64) -> Tensor {
    Tensor::randn(dims, &mut SeededRng::new(seed)).unwrap()
}

fn gradients_accumulate_when_a_var_is_used_twice(dev: &Device) -> R {
    let tape = Tape::new(dev);
    let x = tape.leaf(dev.upload(&t(&[2, 3], 1))?);
    // y = x + 3x, d<y, 1>/dx = 4
    let y = x.add(&x.scale(3.0)?)?;
    let grads = y.backward_with(dev.full(&[2, 3], 1.0)?)?;
    let g = dev.to_host(grads.get(&x).unwrap())?;
    assert!(g.data().iter().all(|&v| (v - 4.0).abs() < 1e-6), "{g:?}");
    Ok(())
}
test_device!(gradients_accumulate_when_a_var_is_used_twice);

/// `x + x` hands the same gradient buffer to both parents; the sum is accumulated in place only
/// into a buffer it owns, so neither the result nor the seed it came from is corrupted.
fn accumulating_a_shared_gradient_leaves_its_other_holders_alone(dev: &Device) -> R {
    let tape = Tape::new(dev);
    let x = tape.leaf(dev.upload(&t(&[4, 5], 4))?);
    let seed = dev.upload(&t(&[4, 5], 5))?;
    let grads = x.add(&x)?.backward_with(seed.clone())?;
    let (g, s) = (dev.to_host(grads.get(&x).unwrap())?, dev.to_host(&seed)?);
    let want: Vec<f32> = t(&[4, 5], 5).data().iter().map(|v| v + v).collect();
    assert_eq!(g.data(), &want[..], "d(x + x)/dx = 2 · seed");
    assert_eq!(s.data(), t(&[4, 5], 5).data(), "the seed is unchanged");
    Ok(())
}
test_device!(accumulating_a_shared_gradient_leaves_its_other_holders_alone);

fn a_param_used_twice_gets_the_sum_of_both_paths(dev: &Device) -> R {
    let p = Param::new(dev.upload(&t(&[3, 3], 2))?);
    let tape = Tape::new(dev);
    let x = tape.constant(dev.upload(&t(&[2, 3], 3))?);
    // Two uses of the parameter through two separate tape.param calls share one leaf.
    let h = x.linear(&tape.param(&p), None)?;
    let y = h.linear(&tape.param(&p), None)?;
    let labels = dev.upload_indices(&[0, 2])?;
    let grads = y.cross_entropy(&labels)?.loss.backward()?;
    assert_eq!(grads.len(), 1);
    assert_eq!(grads.param(&p).unwrap().dims(), &[3, 3]);
    Ok(())
}
test_device!(a_param_used_twice_gets_the_sum_of_both_paths);

/// The gradient of `w` from a small linear + cross-entropy loss, seeded by `backward()` (a unit
/// seed) or by `backward_with(ones)`, and the kernels the backward pass launched.
fn loss_gradient(
    dev: &Device,
    unit_seed: bool,
) -> Result<(Tensor, u64), Box<dyn std::error::Error>> {
    let tape = Tape::new(dev);
    let w = tape.leaf(dev.upload(&t(&[5, 4], 7))?);
    let x = tape.constant(dev.upload(&t(&[3, 4], 8))?);
    let loss = x
        .linear(&w, None)?
        .cross_entropy(&dev.upload_indices(&[0, 4, 2])?)?
        .loss;
    let before = dev.command_stats().dispatches;
    let grads = if unit_seed {
        loss.backward()?
    } else {
        loss.backward_with(dev.full(&[], 1.0)?)?
    };
    let launched = dev.command_stats().dispatches - before;
    Ok((dev.to_host(grads.get(&w).unwrap())?, launched))
}

fn a_loss_seeded_with_one_gives_the_gradient_of_an_explicit_unit_seed(dev: &Device) -> R {
    let (unit, _) = loss_gradient(dev, true)?;
    let (given, _) = loss_gradient(dev, false)?;
    assert_eq!(unit.data(), given.data(), "the same gradient, bit for bit");
    Ok(())
}
test_device!(a_loss_seeded_with_one_gives_the_gradient_of_an_explicit_unit_seed);

#[test]
fn a_loss_seeded_with_one_launches_no_fill_and_no_scaling() -> R {
    // A private context: the launch counter is not shared with tests running beside this one.
    let opts = GpuOptions {
        allow_software: true,
        ..Default::default()
    };
    let Some(dev) = gpu_with_options(&opts) else {
        return Ok(());
    };
    let (_, unit) = loss_gradient(&dev, true)?;
    let (_, given) = loss_gradient(&dev, false)?;
    // The given seed costs its fill and the loss's scale_by.
    assert_eq!(unit + 2, given);
    Ok(())
}

fn no_grad_records_nothing(dev: &Device) -> R {
    let tape = Tape::new(dev);
    let w = tape.leaf(dev.upload(&t(&[4, 1, 3, 3], 4))?);
    let before = tape.len();
    {
        let _guard = tape.no_grad();
        assert!(!tape.is_recording());
        let x = tape.constant(dev.upload(&t(&[1, 1, 5, 5], 5))?);
        let y = x.conv2d(&w, None, &Conv2dSpec::default())?.sigmoid()?;
        assert_eq!(y.dims(), &[1, 4, 3, 3]);
        assert!(!y.requires_grad());
        assert!(matches!(
            y.backward_with(y.value().clone()),
            Err(AutogradError::NoGradPath)
        ));
    }
    assert_eq!(tape.len(), before);
    assert!(tape.is_recording());
    Ok(())
}
test_device!(no_grad_records_nothing);

#[test]
fn backward_on_a_non_scalar_is_an_error() {
    let dev = Device::cpu();
    let tape = Tape::new(&dev);
    let x = tape.leaf(dev.upload(&t(&[2, 3], 6)).unwrap());
    let err = x.sigmoid().unwrap().backward().unwrap_err();
    assert!(matches!(err, AutogradError::NotScalar { .. }), "{err}");
    assert!(err.to_string().contains("[2, 3]"), "{err}");
}

#[test]
fn backward_twice_is_an_error() {
    let dev = Device::cpu();
    let tape = Tape::new(&dev);
    let x = tape.leaf(dev.upload(&t(&[2, 3], 7)).unwrap());
    let labels = dev.upload_indices(&[0, 1]).unwrap();
    let loss = x.cross_entropy(&labels).unwrap().loss;
    loss.backward().unwrap();
    let err = loss.backward().unwrap_err();
    assert!(matches!(err, AutogradError::BackwardTwice), "{err}");
}

#[test]
fn shape_mismatches_name_the_op_and_both_shapes() {
    let dev = Device::cpu();
    let tape = Tape::new(&dev);
    let x = tape.leaf(dev.upload(&t(&[2, 3], 8)).unwrap());
    let w = tape.leaf(dev.upload(&t(&[4, 5], 9)).unwrap());
    let msg = x.linear(&w, None).unwrap_err().to_string();
    assert!(
        msg.contains("linear") && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
        "{msg}"
    );

    let msg = x.add(&w).unwrap_err().to_string();
    assert!(
        msg.contains("add") && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
        "{msg}"
    );

    let img = tape.constant(dev.upload(&t(&[1, 3, 8, 8], 10)).unwrap());
    let k = tape.leaf(dev.upload(&t(&[6, 1, 5, 5], 11)).unwrap());
    let msg = img
        .conv2d(&k, None, &Conv2dSpec::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("conv2d") && msg.contains("[1, 3, 8, 8]") && msg.contains("[6, 1, 5, 5]"),
        "{msg}"
    );

    let msg = x.reshape(&[4, 2]).unwrap_err().to_string();
    assert!(
        msg.contains("reshape") && msg.contains("[2, 3]") && msg.contains("[4, 2]"),
        "{msg}"
    );

    let labels = dev.upload_indices(&[0, 1, 2]).unwrap();
    let msg = x.cross_entropy(&labels).unwrap_err().to_string();
    assert!(
        msg.contains("cross_entropy") && msg.contains("[2, 3]") && msg.contains("[3]"),
        "{msg}"
    );
}

#[test]
fn ops_reject_vars_from_another_tape() {
    let dev = Device::cpu();
    let (a, b) = (Tape::new(&dev), Tape::new(&dev));
    let x = a.leaf(dev.upload(&t(&[2, 3], 12)).unwrap());
    let y = b.leaf(dev.upload(&t(&[2, 3], 13)).unwrap());
    assert!(matches!(
        x.add(&y),
        Err(AutogradError::DifferentTapes { op: "add" })
    ));
}

#[test]
fn leaves_not_reached_get_no_gradient_and_constants_none() {
    let dev = Device::cpu();
    let tape = Tape::new(&dev);
    let x = tape.leaf(dev.upload(&t(&[2, 3], 14)).unwrap());
    let unused = tape.leaf(dev.upload(&t(&[2, 3], 15)).unwrap());
    let c = tape.constant(dev.upload(&t(&[2, 3], 16)).unwrap());
    let y = x.add(&c).unwrap();
    let grads = y.backward_with(dev.full(&[2, 3], 1.0).unwrap()).unwrap();
    assert!(grads.get(&x).is_some());
    assert!(grads.get(&unused).is_none());
    assert!(grads.get(&c).is_none());
}

#[test]
fn param_set_checks_the_shape() {
    let dev = Device::cpu();
    let p = Param::new(dev.zeros(&[2, 3]).unwrap());
    assert!(p.set(dev.zeros(&[3, 2]).unwrap()).is_err());
    p.set(dev.full(&[2, 3], 1.0).unwrap()).unwrap();
    assert_eq!(dev.to_host(&p.value()).unwrap().sum(), 6.0);
}

/// Compile-time proof: parameters cross threads (models are moved to worker threads).
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Param>();
};

#[test]
fn a_param_updated_on_another_thread_is_seen_by_every_clone() {
    let dev = Device::cpu();
    let p = Param::new(dev.zeros(&[4]).unwrap());
    let (q, d) = (p.clone(), dev.clone());
    std::thread::spawn(move || q.update(|t| *t = d.full(&[4], 2.0).unwrap()))
        .join()
        .unwrap();
    assert_eq!(dev.to_host(&p.value()).unwrap().sum(), 8.0);
    assert!(p.ptr_eq(&p.clone()));
    assert!(!p.ptr_eq(&Param::new(dev.zeros(&[4]).unwrap())));
    // One id per parameter, shared by its clones.
    assert_eq!(p.id(), p.clone().id());
}
