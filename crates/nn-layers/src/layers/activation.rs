use crate::error::Result;
use crate::module::{Module, ModuleVisitor};
use crate::summary::LayerInfo;
use autograd::Var;
use conv_kernels::Activation;

macro_rules! activation_layer {
    ($name:ident, $act:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn kind(&self) -> &'static str {
                stringify!($name)
            }
            fn forward(&self, x: &Var) -> Result<Var> {
                Ok(x.activation($act)?)
            }
            fn as_activation(&self) -> Option<Activation> {
                Some($act)
            }
            fn visit(&self, _: &mut dyn ModuleVisitor) {}
            fn layer_info(&self) -> Option<&dyn LayerInfo> {
                Some(self)
            }
        }

        impl LayerInfo for $name {
            fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
                Ok(input.to_vec())
            }
            fn flops(&self, input: &[usize]) -> Result<u64> {
                Ok(input.iter().product::<usize>() as u64)
            }
        }
    };
}

activation_layer!(
    Sigmoid,
    Activation::Sigmoid,
    "Logistic sigmoid (`nn.Sigmoid`)."
);
activation_layer!(ReLU, Activation::Relu, "Rectified linear unit (`nn.ReLU`).");
activation_layer!(Tanh, Activation::Tanh, "Hyperbolic tangent (`nn.Tanh`).");
