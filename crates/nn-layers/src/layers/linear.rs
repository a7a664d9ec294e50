use crate::error::{Result, invalid};
use crate::init;
use crate::module::{Module, ModuleVisitor};
use crate::summary::LayerInfo;
use autograd::{Param, Var};
use conv_kernels::{Activation, Device};
use tensor::SeededRng;

/// Fully connected layer (`nn.Linear`): `y = x · weightᵀ + bias`, `weight` `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// The weight `[out, in]`.
    pub weight: Param,
    /// The bias `[out]`, if any.
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer with bias and PyTorch's default init (`U(±1/√in)` for weights and bias).
    pub fn new(
        device: &Device,
        rng: &mut SeededRng,
        inputs: usize,
        outputs: usize,
    ) -> Result<Self> {
        Self::with_bias(device, rng, inputs, outputs, true)
    }

    /// With or without bias, PyTorch's default init.
    pub fn with_bias(
        device: &Device,
        rng: &mut SeededRng,
        inputs: usize,
        outputs: usize,
        bias: bool,
    ) -> Result<Self> {
        let dims = [outputs, inputs];
        let weight = Param::new(device.upload_owned(init::default_weight(&dims, rng)?)?);
        let bias = if bias {
            Some(Param::new(
                device.upload_owned(init::default_bias(outputs, inputs, rng)?)?,
            ))
        } else {
            None
        };
        Ok(Self { weight, bias })
    }
}

impl Module for Linear {
    fn kind(&self) -> &'static str {
        "Linear"
    }

    fn forward(&self, x: &Var) -> Result<Var> {
        let tape = x.tape();
        let w = tape.param(&self.weight);
        let b = self.bias.as_ref().map(|b| tape.param(b));
        Ok(x.linear(&w, b.as_ref())?)
    }

    fn forward_activation(&self, x: &Var, act: Activation) -> Option<Result<Var>> {
        let tape = x.tape();
        let w = tape.param(&self.weight);
        let b = self.bias.as_ref().map(|b| tape.param(b));
        Some(
            x.linear_activation(&w, b.as_ref(), Some(act))
                .map_err(Into::into),
        )
    }

    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.param("weight", &self.weight);
        if let Some(b) = &self.bias {
            v.param("bias", b);
        }
    }

    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for Linear {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        let w = self.weight.dims();
        match input {
            [n, i] if *i == w[1] => Ok(vec![*n, w[0]]),
            _ => Err(invalid(
                "Linear",
                format!(
                    "input {input:?} does not fit weight {w:?} (expected [n, {}])",
                    w[1]
                ),
            )),
        }
    }

    fn flops(&self, input: &[usize]) -> Result<u64> {
        let out = self.output_dims(input)?;
        let (n, o, i) = (out[0] as u64, out[1] as u64, input[1] as u64);
        Ok(2 * n * o * i + if self.bias.is_some() { n * o } else { 0 })
    }
}
