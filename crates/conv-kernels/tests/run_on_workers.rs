//! `Device::run_on_workers`: on the CPU backend the work moves to a worker of the rayon pool
//! (or stays on the one it is already on), elsewhere it runs on the calling thread, and the
//! ops it runs give the same bits either way.

use conv_kernels::{Conv2dSpec, Device};
use fovea_test_support::TestResult;
use tensor::{SeededRng, Tensor};

/// A padded 3×3 conv of a small random batch on `dev`, read back.
fn conv(dev: &Device) -> TestResult<Vec<f32>> {
    let mut rng = SeededRng::new(7);
    let x = dev.upload(&Tensor::randn(&[4, 8, 14, 14], &mut rng)?)?;
    let w = dev.upload(&Tensor::randn(&[16, 8, 3, 3], &mut rng)?)?;
    let b = dev.upload(&Tensor::randn(&[16], &mut rng)?)?;
    let y = dev.conv2d(&x, &w, Some(&b), &Conv2dSpec::new(1, 1))?;
    Ok(y.to_host()?.data().to_vec())
}

#[test]
fn cpu_work_runs_on_a_pool_worker_with_the_same_bits() -> TestResult {
    let dev = Device::cpu();
    assert_eq!(
        rayon::current_thread_index(),
        None,
        "the test thread is no worker"
    );
    let (worker, on_workers) = dev.run_on_workers(|| (rayon::current_thread_index(), conv(&dev)));
    assert!(worker.is_some(), "the work ran outside the pool");
    assert_eq!(on_workers?, conv(&dev)?);
    Ok(())
}

#[test]
fn inside_a_pool_the_work_stays_on_its_worker() -> TestResult {
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let dev = Device::cpu();
    let (outer, inner, threads) = single.install(|| {
        let outer = std::thread::current().id();
        dev.run_on_workers(|| {
            (
                outer,
                std::thread::current().id(),
                rayon::current_num_threads(),
            )
        })
    });
    assert_eq!(outer, inner);
    assert_eq!(threads, 1, "the work left the pool it was called from");
    Ok(())
}

#[test]
fn reference_work_runs_on_the_calling_thread() {
    let here = std::thread::current().id();
    assert_eq!(
        Device::Reference.run_on_workers(|| std::thread::current().id()),
        here
    );
}
