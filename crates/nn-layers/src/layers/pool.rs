use crate::error::Result;
use crate::module::{Module, ModuleVisitor};
use crate::summary::{LayerInfo, Window};
use autograd::Var;
use conv_kernels::{Pool2dSpec, PoolKind};
use tensor::Shape;

fn out_dims(spec: &Pool2dSpec, input: &[usize]) -> Result<Vec<usize>> {
    Ok(spec.check(&Shape::new(input)?)?.output_dims().to_vec())
}

fn pool_window(spec: &Pool2dSpec) -> Window {
    Window {
        kernel: spec.kernel,
        stride: spec.stride,
        padding: spec.padding,
        dilation: [1, 1],
    }
}

fn pool_flops(spec: &Pool2dSpec, input: &[usize]) -> Result<u64> {
    let out: usize = out_dims(spec, input)?.iter().product();
    Ok((out * spec.kernel[0] * spec.kernel[1]) as u64)
}

/// Average pooling (`nn.AvgPool2d(kernel, stride, padding)`, `count_include_pad=True`).
#[derive(Clone, Copy, Debug)]
pub struct AvgPool2d {
    /// The settings.
    pub spec: Pool2dSpec,
}

impl AvgPool2d {
    /// A square window.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            spec: Pool2dSpec::new(PoolKind::Avg, kernel, stride, padding),
        }
    }
}

impl Module for AvgPool2d {
    fn kind(&self) -> &'static str {
        "AvgPool2d"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.pool2d(&self.spec)?)
    }
    fn as_pool(&self) -> Option<Pool2dSpec> {
        Some(self.spec)
    }
    fn visit(&self, _: &mut dyn ModuleVisitor) {}
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for AvgPool2d {
    fn window(&self) -> Option<Window> {
        Some(pool_window(&self.spec))
    }
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        out_dims(&self.spec, input)
    }
    fn flops(&self, input: &[usize]) -> Result<u64> {
        pool_flops(&self.spec, input)
    }
}

/// Max pooling (`nn.MaxPool2d(kernel, stride, padding)`).
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d {
    /// The settings.
    pub spec: Pool2dSpec,
}

impl MaxPool2d {
    /// A square window.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            spec: Pool2dSpec::new(PoolKind::Max, kernel, stride, padding),
        }
    }
}

impl Module for MaxPool2d {
    fn kind(&self) -> &'static str {
        "MaxPool2d"
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.pool2d(&self.spec)?)
    }
    fn as_pool(&self) -> Option<Pool2dSpec> {
        Some(self.spec)
    }
    fn visit(&self, _: &mut dyn ModuleVisitor) {}
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        Some(self)
    }
}

impl LayerInfo for MaxPool2d {
    fn window(&self) -> Option<Window> {
        Some(pool_window(&self.spec))
    }
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        out_dims(&self.spec, input)
    }
    fn flops(&self, input: &[usize]) -> Result<u64> {
        pool_flops(&self.spec, input)
    }
}
