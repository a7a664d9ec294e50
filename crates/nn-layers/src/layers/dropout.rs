use crate::error::{Result, invalid};
use crate::module::{Module, ModuleRng, ModuleVisitor, TrainingFlag};
use crate::summary::LayerInfo;
use autograd::Var;
use conv_kernels::DropoutSpec;

/// Dropout (`nn.Dropout(p)`): in training, zeroes each element with probability `p` and scales
/// the rest by `1/(1-p)`; the identity in evaluation.
///
/// Each forward pass draws one 64-bit key from the layer's own seeded generator (its state is
/// saved in checkpoints under the name `rng`); the mask itself is drawn on the device from that
/// key (`conv_kernels::DropoutSpec`), so the same seed gives the same mask on every device and
/// no mask crosses from the host.
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
        let seed = self.rng.with(|rng| rng.next_u64());
        Ok(x.dropout(&DropoutSpec { p: self.p, seed })?)
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
