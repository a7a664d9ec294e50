use crate::error::Result;
use crate::module::{Module, ModuleVisitor};
use crate::summary::LayerInfo;
use autograd::Var;
use conv_kernels::AdaptiveAvgPool2dSpec;
use tensor::Shape;

/// Adaptive average pooling (`nn.AdaptiveAvgPool2d((oh, ow))`); `(1, 1)` is the global
/// average pooling that replaces fully connected layers in NiN and ResNet.
#[derive(Clone, Copy, Debug)]
pub struct AdaptiveAvgPool2d {
    /// The output size.
    pub spec: AdaptiveAvgPool2dSpec,
}

impl AdaptiveAvgPool2d {
    /// Pooling to `[oh, ow]`.
    pub fn new(oh: usize, ow: usize) -> Self {
        Self {
            spec: AdaptiveAvgPool2dSpec::new(oh, ow),
        }
    }

    /// Global average pooling (`[1, 1]`).
    pub fn global() -> Self {
        Self {
            spec: AdaptiveAvgPool2dSpec::GLOBAL,
        }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn kind(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.adaptive_avg_pool2d(&self.spec)?)
    }
    fn visit(&self, _: &mut dyn ModuleVisitor) {}
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for AdaptiveAvgPool2d {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self.spec.check(&Shape::new(input)?)?.output_dims().to_vec())
    }
    fn flops(&self, input: &[usize]) -> Result<u64> {
        Ok(input.iter().product::<usize>() as u64)
    }
}
