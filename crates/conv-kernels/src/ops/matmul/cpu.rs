//! Fast matrix product: the shared GEMM machinery (`cpu/gemm.rs`) with the bias and the
//! activation fused in.

use super::MatmulHostKernels;
use crate::cpu::CpuBackend;
use crate::cpu::gemm::{Layout, Threads, sgemm};
use crate::ops::activation::cpu::epilogue_parallel;
use crate::{Activation, MatmulGeometry};

/// The `matmul` op: `c[m, n] = act(op(a) · op(b) (+ bias[n] on every row))`, using every core.
fn matmul(
    g: &MatmulGeometry,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    c: &mut [f32],
) {
    let (m, k, n) = (g.m, g.k, g.n);
    let la = if g.spec.trans_a {
        Layout::row_major(k, m).t()
    } else {
        Layout::row_major(m, k)
    };
    let lb = if g.spec.trans_b {
        Layout::row_major(n, k).t()
    } else {
        Layout::row_major(k, n)
    };
    // Fused bias: start C at the bias and accumulate the product into it.
    if let Some(bias) = bias
        && n > 0
    {
        for row in c.chunks_mut(n) {
            row.copy_from_slice(bias);
        }
    }
    sgemm(
        a,
        la,
        b,
        lb,
        c,
        Layout::row_major(m, n),
        bias.is_some(),
        Threads::Parallel,
    );
    epilogue_parallel(act, c);
}

impl MatmulHostKernels for CpuBackend {
    fn matmul(
        &self,
        g: &MatmulGeometry,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        act: Option<Activation>,
        c: &mut [f32],
    ) {
        matmul(g, a, b, bias, act, c)
    }
}
