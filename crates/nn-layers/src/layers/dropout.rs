use crate::error::{Result, invalid};
use crate::module::{Module, ModuleRng, ModuleVisitor, TrainingFlag};
use crate::summary::LayerInfo;
use autograd::Var;
use tensor::Tensor;

/// Dropout (`nn.Dropout(p)`): in training, zeroes each element with probability `p` and scales
/// the rest by `1/(1-p)`; the identity in evaluation.
///
/// The mask is drawn on the host from the layer's own seeded generator (its state is saved in
/// checkpoints under the name `rng`) and uploaded: one host-to-device copy per forward pass,
/// never a read-back. It is applied on the device.
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f32,
    training: TrainingFlag,
    rng: ModuleRng,
}

impl Dropout {
    /// Drop probability `p` in `[0, 1]`, mask generator seeded with `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "Dropout",
                format!("probability {p} is not in [0, 1]"),
            ));
        }
        Ok(Self {
            p,
            training: TrainingFlag::new(),
            rng: ModuleRng::new(seed),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// Whether it is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.get()
    }
}

impl Module for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn forward(&self, x: &Var) -> Result<Var> {
        if !self.training.get() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - self.p;
        let mask: Vec<f32> = self.rng.with(|rng| {
            (0..x.value().numel())
                .map(|_| if rng.uniform01() < keep { 1.0 } else { 0.0 })
                .collect()
        });
        let mask = x.device().upload_owned(Tensor::from_vec(x.dims(), mask)?)?;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        Ok(x.masked_scale(&mask, scale)?)
    }

    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.training_flag(&self.training);
        v.rng("rng", &self.rng);
    }

    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for Dropout {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
}
