//! Concatenation along an axis (PyTorch `torch.cat`); the gradient of each input is its slice
//! of the output's gradient.

use crate::error::{AutogradError, Result};
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{CatSpec, Device, DeviceTensor};

impl Var {
    /// Joins `vars` along `dim` (`1` for channels); all must share the other dimensions.
    pub fn cat(vars: &[&Var], dim: usize) -> Result<Var> {
        const OP: &str = "cat";
        let Some(first) = vars.first() else {
            return Err(AutogradError::Invalid {
                op: OP,
                reason: "needs at least one tensor".into(),
            });
        };
        first.check_tapes(OP, &vars[1..])?;
        let spec = CatSpec { dim };
        let values: Vec<&DeviceTensor> = vars.iter().map(|v| v.value()).collect();
        let names: Vec<String> = (0..vars.len()).map(|i| format!("tensor {i}")).collect();
        let shapes: Vec<(&str, &tensor::Shape)> = names
            .iter()
            .zip(vars)
            .map(|(n, v)| (n.as_str(), v.shape()))
            .collect();
        let y = first
            .device()
            .cat(&values, &spec)
            .map_err(op_err(OP, &shapes))?;
        let tape = first.tape();
        let backward = tape.tracks(vars).then(|| {
            let dims: Vec<Vec<usize>> = vars.iter().map(|v| v.dims().to_vec()).collect();
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                let d: Vec<&[usize]> = dims.iter().map(Vec::as_slice).collect();
                Ok(dev
                    .cat_backward(&d, g, &spec)?
                    .into_iter()
                    .map(Some)
                    .collect())
            }) as BackwardFn
        });
        Ok(tape.record(vars, y, backward))
    }
}
