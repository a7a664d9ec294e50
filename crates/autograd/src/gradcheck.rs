//! Checks an op's backward against central finite differences.
//!
//! For `y = f(x₁, …, xₖ)` and a fixed random projection `r` (same shape as `y`), the analytic
//! gradient of `⟨y, r⟩` from backward is compared element by element with
//! `(⟨f(x + h·eᵢ), r⟩ − ⟨f(x − h·eᵢ), r⟩) / 2h`, the projections summed in f64 on the host.

use crate::error::{AutogradError, Result};
use crate::tape::{Tape, Var};
use conv_kernels::Device;
use tensor::{SeededRng, Tensor};

/// Settings of [`gradcheck`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f32,
    /// Relative tolerance: `|analytic − numeric| <= atol + rtol·|numeric|`.
    pub rtol: f32,
    /// Absolute tolerance.
    pub atol: f32,
    /// Seed of the random projection of the output.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    /// `eps` 1e-2, `rtol` 1e-2, `atol` 1e-3: suited to f32 forward passes of unit-scale inputs.
    fn default() -> Self {
        Self {
            eps: 1e-2,
            rtol: 1e-2,
            atol: 1e-3,
            seed: 0,
        }
    }
}

/// What a passing [`gradcheck`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Elements compared.
    pub checked: usize,
    /// Largest `|analytic − numeric|` seen.
    pub max_abs_error: f32,
}

fn project(dev: &Device, y: &Var, r: &Tensor) -> Result<f64> {
    let y = dev.to_host(y.value())?;
    Ok(y.data()
        .iter()
        .zip(r.data())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum())
}

/// Compares the gradients backward gives for every element of every input of `f` with finite
/// differences on `device`; the first disagreement is an [`AutogradError::GradcheckFailed`].
pub fn gradcheck<F>(
    device: &Device,
    inputs: &[Tensor],
    f: F,
    opts: &GradcheckOptions,
) -> Result<GradcheckReport>
where
    F: Fn(&[Var]) -> Result<Var>,
{
    if inputs.is_empty() {
        return Err(AutogradError::Invalid {
            op: "gradcheck",
            reason: "no inputs to check".into(),
        });
    }
    let tape = Tape::new(device);
    let vars = inputs
        .iter()
        .map(|t| Ok(tape.leaf(device.upload(t)?)))
        .collect::<Result<Vec<_>>>()?;
    let y = f(&vars)?;
    let mut rng = SeededRng::new(opts.seed);
    let r = Tensor::rand_uniform(y.dims(), -1.0, 1.0, &mut rng)?;
    let grads = y.backward_with(device.upload(&r)?)?;

    let eval = |xs: &[Tensor]| -> Result<f64> {
        let tape = Tape::new(device);
        let _guard = tape.no_grad();
        let vars = xs
            .iter()
            .map(|t| Ok(tape.constant(device.upload(t)?)))
            .collect::<Result<Vec<_>>>()?;
        project(device, &f(&vars)?, &r)
    };

    let mut report = GradcheckReport {
        checked: 0,
        max_abs_error: 0.0,
    };
    let mut xs = inputs.to_vec();
    for (i, var) in vars.iter().enumerate() {
        let analytic = match grads.get(var) {
            Some(g) => device.to_host(g)?,
            None => Tensor::zeros(var.dims())?,
        };
        for j in 0..inputs[i].numel() {
            let orig = inputs[i].data()[j];
            xs[i].data_mut()[j] = orig + opts.eps;
            let plus = eval(&xs)?;
            xs[i].data_mut()[j] = orig - opts.eps;
            let minus = eval(&xs)?;
            xs[i].data_mut()[j] = orig;
            let numeric = ((plus - minus) / (2.0 * opts.eps as f64)) as f32;
            let a = analytic.data()[j];
            let err = (a - numeric).abs();
            if err.is_nan() || err > opts.atol + opts.rtol * numeric.abs() {
                return Err(AutogradError::GradcheckFailed {
                    input: i,
                    index: j,
                    analytic: a,
                    numeric,
                    rtol: opts.rtol,
                    atol: opts.atol,
                });
            }
            report.checked += 1;
            report.max_abs_error = report.max_abs_error.max(err);
        }
    }
    Ok(report)
}
