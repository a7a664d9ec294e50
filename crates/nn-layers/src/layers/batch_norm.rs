use crate::buffer::Buffer;
use crate::error::Result;
use crate::module::{Module, ModuleVisitor, TrainingFlag};
use crate::summary::LayerInfo;
use autograd::{Param, Var};
use conv_kernels::{Activation, BatchNorm2dSpec, Device};
use tensor::Tensor;

/// 2-D batch normalisation (`nn.BatchNorm2d(num_features)`, `eps = 1e-5`, `momentum = 0.1`):
/// parameters `weight` (ones) and `bias` (zeros); buffers `running_mean` (zeros),
/// `running_var` (ones) and `num_batches_tracked` (an int64 scalar), named and saved as
/// PyTorch does. Training normalises with the batch's statistics and updates the running
/// ones on the device; eval normalises with the running ones.
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    /// Per-channel scale.
    pub weight: Param,
    /// Per-channel shift.
    pub bias: Param,
    /// Running mean of the batches seen in training.
    pub running_mean: Buffer,
    /// Running (unbiased) variance of the batches seen in training.
    pub running_var: Buffer,
    /// Training batches seen.
    pub num_batches_tracked: Buffer,
    /// `eps` and `momentum` (its `training` field follows the layer's mode).
    pub spec: BatchNorm2dSpec,
    training: TrainingFlag,
}

impl BatchNorm2d {
    /// Batch norm over `num_features` channels with PyTorch's defaults.
    pub fn new(device: &Device, num_features: usize) -> Result<Self> {
        let c = [num_features];
        let full = |v: f32| -> Result<_> { Ok(device.upload_owned(Tensor::full(&c, v)?)?) };
        Ok(Self {
            weight: Param::new(full(1.0)?),
            bias: Param::new(full(0.0)?),
            running_mean: Buffer::new(full(0.0)?),
            running_var: Buffer::new(full(1.0)?),
            num_batches_tracked: Buffer::scalar_i64(0),
            spec: BatchNorm2dSpec::default(),
            training: TrainingFlag::new(),
        })
    }

    /// Whether it is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.get()
    }

    /// `act(self(x))` with `act` fused into the batch norm's output (`None`: plain batch norm).
    pub fn forward_with(&self, x: &Var, act: Option<Activation>) -> Result<Var> {
        self.forward_inner(x, None, act)
    }

    /// `act(self(x) + residual)` in one pass over the output (a residual block's
    /// `relu(bn2(conv2(y)) + shortcut)`); `residual` has `x`'s shape.
    pub fn forward_residual(
        &self,
        x: &Var,
        residual: &Var,
        act: Option<Activation>,
    ) -> Result<Var> {
        self.forward_inner(x, Some(residual), act)
    }

    fn forward_inner(
        &self,
        x: &Var,
        residual: Option<&Var>,
        act: Option<Activation>,
    ) -> Result<Var> {
        let tape = x.tape();
        let (w, b) = (tape.param(&self.weight), tape.param(&self.bias));
        let spec = BatchNorm2dSpec {
            training: self.training.get(),
            activation: act,
            ..self.spec
        };
        let y = self.running_mean.update(|rm| {
            self.running_var.update(|rv| match residual {
                Some(r) => x.batch_norm2d_residual(&w, &b, rm, rv, r, &spec),
                None => x.batch_norm2d(&w, &b, rm, rv, &spec),
            })
        })???;
        if spec.training {
            let n = self.num_batches_tracked.get_i64()?;
            self.num_batches_tracked.set_i64(n + 1)?;
        }
        Ok(y)
    }
}

impl Module for BatchNorm2d {
    fn kind(&self) -> &'static str {
        "BatchNorm2d"
    }

    fn forward(&self, x: &Var) -> Result<Var> {
        self.forward_with(x, None)
    }

    /// Batch norm with the activation fused into its output: one pass instead of two, and the
    /// activation's derivative taken in the batch norm's backward.
    fn forward_activation(&self, x: &Var, act: Activation) -> Option<Result<Var>> {
        Some(self.forward_with(x, Some(act)))
    }

    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
        v.buffer("running_mean", &self.running_mean);
        v.buffer("running_var", &self.running_var);
        v.buffer("num_batches_tracked", &self.num_batches_tracked);
        v.training_flag(&self.training);
    }

    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for BatchNorm2d {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        let c = self.weight.dims()[0];
        if input.len() != 4 || input[1] != c {
            return Err(crate::error::invalid(
                "BatchNorm2d",
                format!("expects [n, {c}, h, w], got {input:?}"),
            ));
        }
        Ok(input.to_vec())
    }

    fn flops(&self, input: &[usize]) -> Result<u64> {
        // Normalise, scale and shift: two multiply-adds per element.
        Ok(4 * input.iter().product::<usize>() as u64)
    }
}
