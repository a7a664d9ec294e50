//! Summary-only information (output shapes, FLOPs, windows), kept out of [`Module`]: the
//! built-in layers implement [`LayerInfo`]; a custom module need not, and summaries then find
//! its output shape by a dry run.

use crate::error::Result;
use crate::module::{Item, Module, walk};
use autograd::Tape;
use conv_kernels::Device;

/// What a layer can tell about itself without running (d2l's shape walk, FLOPs, the
/// output-size formula). Offered through [`Module::layer_info`].
pub trait LayerInfo {
    /// The output dimensions for an input of `input` dimensions (no computation).
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>>;

    /// Forward FLOPs for an input of `input` dimensions: multiply-adds count two, element-wise
    /// ops (bias, activation, pooling window) one per element touched; 0 by default (views).
    fn flops(&self, _input: &[usize]) -> Result<u64> {
        Ok(0)
    }

    /// The sliding window of a conv or pool layer (for the output-size formula), else `None`.
    fn window(&self) -> Option<Window> {
        None
    }
}

/// One row of a model summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    /// The child's name (`"0"`, `"1"`, ...), the prefix of its parameter names.
    pub name: String,
    /// The layer kind (`Conv2d`, ...).
    pub kind: &'static str,
    /// Output dimensions for the summarised input.
    pub output_dims: Vec<usize>,
    /// Trainable values in this layer.
    pub params: usize,
    /// Forward FLOPs for the summarised input (see [`LayerInfo::flops`]); `None` for a module
    /// without [`LayerInfo`].
    pub flops: Option<u64>,
    /// The conv or pool window, when the layer has one.
    pub window: Option<Window>,
}

/// A conv or pool layer's window settings, each as `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Kernel size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Spacing between kernel taps (1 for pools).
    pub dilation: [usize; 2],
}

/// The output dimensions of `module` for an input of `input` dimensions, found by running it
/// on zeros on `device` (where its parameters live) without recording, in evaluation mode so
/// that nothing it owns changes: its training flags and generators are restored afterwards.
pub(crate) fn dry_run_dims(
    module: &dyn Module,
    device: &Device,
    input: &[usize],
) -> Result<Vec<usize>> {
    let mut modes = Vec::new();
    walk(module, &mut |_, item| {
        if let Item::Flag(flag) = item {
            modes.push(flag.get());
            flag.set(false);
        }
    });
    let rngs = module.rng_states();
    let out = (|| {
        let tape = Tape::new(device);
        let _guard = tape.no_grad();
        let y = module.forward(&tape.constant(device.zeros(input)?))?;
        Ok(y.dims().to_vec())
    })();
    let mut modes = modes.into_iter();
    walk(module, &mut |_, item| {
        if let Item::Flag(flag) = item
            && let Some(m) = modes.next()
        {
            flag.set(m);
        }
    });
    for (name, state) in rngs {
        module.set_rng_state(&name, state);
    }
    out
}
