//! Matrix product `C = op(A) · op(B)` with optional transposes.

use crate::error::Result;
use crate::tape::{BackwardFn, Var, op_err};
use conv_kernels::{Device, DeviceTensor, MatmulSpec};

fn spec(trans_a: bool, trans_b: bool) -> MatmulSpec {
    MatmulSpec { trans_a, trans_b }
}

impl Var {
    /// `op(self) · op(other)` for rank-2 operands, `op` transposing where `spec` says so.
    pub fn matmul(&self, other: &Var, spec_ab: &MatmulSpec) -> Result<Var> {
        const OP: &str = "matmul";
        self.check_tapes(OP, &[other])?;
        let dev = self.device();
        let c = dev
            .matmul(self.value(), other.value(), None, spec_ab)
            .map_err(op_err(OP, &[("A", self.shape()), ("B", other.shape())]))?;
        let tape = self.tape();
        let backward = tape.tracks(&[self, other]).then(|| {
            let (a, b, s) = (self.value().clone(), other.value().clone(), *spec_ab);
            let (need_a, need_b) = (self.requires_grad(), other.requires_grad());
            Box::new(move |dev: &Device, g: &DeviceTensor| {
                let (ta, tb) = (s.trans_a, s.trans_b);
                // dA: stored as A is (so transposed back when trans_a).
                let ga = if !need_a {
                    None
                } else if !ta {
                    Some(dev.matmul(g, &b, None, &spec(false, !tb))?)
                } else {
                    Some(dev.matmul(&b, g, None, &spec(tb, true))?)
                };
                let gb = if !need_b {
                    None
                } else if !tb {
                    Some(dev.matmul(&a, g, None, &spec(!ta, false))?)
                } else {
                    Some(dev.matmul(g, &a, None, &spec(true, ta))?)
                };
                Ok(vec![ga, gb])
            }) as BackwardFn
        });
        Ok(tape.record(&[self, other], c, backward))
    }
}
