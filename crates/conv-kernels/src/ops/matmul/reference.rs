//! Reference matrix product: one dot product per output element, summed in f64.

use super::MatmulHostKernels;
use crate::reference::Reference;
use crate::{Activation, MatmulGeometry};

fn matmul(
    g: &MatmulGeometry,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    c: &mut [f32],
) {
    let (m, k, n) = (g.m, g.k, g.n);
    let at = |i: usize, p: usize| {
        if g.spec.trans_a {
            a[p * m + i]
        } else {
            a[i * k + p]
        }
    };
    let bt = |p: usize, j: usize| {
        if g.spec.trans_b {
            b[j * k + p]
        } else {
            b[p * n + j]
        }
    };
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|p| at(i, p) as f64 * bt(p, j) as f64).sum();
            let v = (dot + bias.map_or(0.0, |bv| bv[j] as f64)) as f32;
            c[i * n + j] = act.map_or(v, |act| act.apply(v));
        }
    }
}

impl MatmulHostKernels for Reference {
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
