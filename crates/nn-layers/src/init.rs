//! Weight initialisers, as PyTorch's `torch.nn.init` defines them, drawing from a [`SeededRng`].
//!
//! They return host tensors; upload them with the device (or use the layers' constructors).

use crate::error::{Result, invalid};
use tensor::{SeededRng, Tensor};

/// `(fan_in, fan_out)` of a weight: `dims[1]·receptive` and `dims[0]·receptive`, where
/// `receptive` is the product of the dims after the second (PyTorch
/// `_calculate_fan_in_and_fan_out`); needs rank >= 2.
pub fn fans(dims: &[usize]) -> Result<(usize, usize)> {
    if dims.len() < 2 {
        return Err(invalid(
            "init",
            format!("fan in/out need a weight of rank >= 2, found dims {dims:?}"),
        ));
    }
    let receptive: usize = dims[2..].iter().product();
    Ok((dims[1] * receptive, dims[0] * receptive))
}

/// Samples `U(low, high)`.
pub fn uniform(dims: &[usize], low: f32, high: f32, rng: &mut SeededRng) -> Result<Tensor> {
    Ok(Tensor::rand_uniform(dims, low, high, rng)?)
}

/// Zeros.
pub fn zeros(dims: &[usize]) -> Result<Tensor> {
    Ok(Tensor::zeros(dims)?)
}

/// Glorot/Xavier uniform: `U(±gain·√(6 / (fan_in + fan_out)))` (`nn.init.xavier_uniform_`).
pub fn xavier_uniform(dims: &[usize], gain: f32, rng: &mut SeededRng) -> Result<Tensor> {
    let (fan_in, fan_out) = fans(dims)?;
    if fan_in + fan_out == 0 {
        return zeros(dims);
    }
    let bound = gain * (6.0 / (fan_in + fan_out) as f32).sqrt();
    uniform(dims, -bound, bound, rng)
}

/// He/Kaiming uniform for a leaky-ReLU slope `a`, fan-in mode: `U(±√(2/(1+a²))·√(3/fan_in))`
/// (`nn.init.kaiming_uniform_(w, a)`).
pub fn kaiming_uniform(dims: &[usize], a: f32, rng: &mut SeededRng) -> Result<Tensor> {
    let (fan_in, _) = fans(dims)?;
    if fan_in == 0 {
        return zeros(dims);
    }
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    let bound = gain * (3.0 / fan_in as f32).sqrt();
    uniform(dims, -bound, bound, rng)
}

/// He/Kaiming normal for ReLU, fan-in mode: `N(0, 2/fan_in)` (`nn.init.kaiming_normal_(w)`).
pub fn kaiming_normal(dims: &[usize], rng: &mut SeededRng) -> Result<Tensor> {
    let (fan_in, _) = fans(dims)?;
    if fan_in == 0 {
        return zeros(dims);
    }
    let std = (2.0 / fan_in as f32).sqrt();
    let mut t = Tensor::randn(dims, rng)?;
    for v in t.data_mut() {
        *v *= std;
    }
    Ok(t)
}

/// Re-initialises every convolution of `model` (its 4-D `*weight` parameters) with
/// [`kaiming_normal`] and their biases with zeros, in parameter-name order (the
/// `model.apply(init)` idiom; NiN's recipe, which stays at chance under PyTorch's default init).
pub fn kaiming_normal_convs(
    model: &dyn crate::Module,
    device: &conv_kernels::Device,
    rng: &mut SeededRng,
) -> Result<()> {
    let params = model.named_parameters();
    for (name, p) in &params {
        let Some(prefix) = name.strip_suffix("weight") else {
            continue;
        };
        if p.dims().len() != 4 {
            continue;
        }
        p.set(device.upload_owned(kaiming_normal(&p.dims(), rng)?)?)?;
        if let Some((_, b)) = params.iter().find(|(n, _)| *n == format!("{prefix}bias")) {
            b.set(device.upload_owned(zeros(&b.dims())?)?)?;
        }
    }
    Ok(())
}

/// PyTorch's default Conv2d/Linear weight: `kaiming_uniform(a = √5)`, i.e. `U(±1/√fan_in)`.
pub fn default_weight(dims: &[usize], rng: &mut SeededRng) -> Result<Tensor> {
    kaiming_uniform(dims, 5f32.sqrt(), rng)
}

/// PyTorch's default Conv2d/Linear bias: `U(±1/√fan_in)` (zeros when `fan_in` is 0).
pub fn default_bias(len: usize, fan_in: usize, rng: &mut SeededRng) -> Result<Tensor> {
    if fan_in == 0 {
        return zeros(&[len]);
    }
    let bound = 1.0 / (fan_in as f32).sqrt();
    uniform(&[len], -bound, bound, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_abs(t: &Tensor) -> f32 {
        t.data().iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    #[test]
    fn bounds_follow_pytorch() {
        let mut rng = SeededRng::new(0);
        // Conv 6x1x5x5: fan_in 25, fan_out 150.
        let w = xavier_uniform(&[6, 1, 5, 5], 1.0, &mut rng).unwrap();
        let bound = (6.0f32 / 175.0).sqrt();
        assert!(max_abs(&w) <= bound && max_abs(&w) > 0.8 * bound);
        let w = default_weight(&[120, 400], &mut rng).unwrap();
        let bound = 1.0 / 400f32.sqrt();
        assert!(max_abs(&w) <= bound * 1.0001 && max_abs(&w) > 0.9 * bound);
        let w = kaiming_uniform(&[64, 100], 0.0, &mut rng).unwrap();
        let bound = (6.0f32 / 100.0).sqrt();
        assert!(max_abs(&w) <= bound && max_abs(&w) > 0.9 * bound);
        let b = default_bias(120, 400, &mut rng).unwrap();
        assert!(max_abs(&b) <= 0.05);
        assert!(fans(&[3]).is_err());
        assert_eq!(fans(&[16, 6, 5, 5]).unwrap(), (150, 400));
    }

    #[test]
    fn xavier_variance_matches_its_definition() {
        // Var(U(±b)) = b²/3 = 2 / (fan_in + fan_out).
        let mut rng = SeededRng::new(1);
        let w = xavier_uniform(&[200, 300], 1.0, &mut rng).unwrap();
        let var = w.data().iter().map(|v| v * v).sum::<f32>() / w.numel() as f32;
        let want = 2.0 / 500.0;
        assert!((var - want).abs() / want < 0.03, "{var} vs {want}");
    }
}
