//! Convolution forward and backward as im2col + GEMM, parallel over chunks of images.
//!
//! Each rayon task lowers a few images into one column matrix (so a GEMM sees at least a few
//! hundred columns even for 10×10 outputs) and runs single-threaded GEMMs on it. The weight
//! gradient is reduced per fixed chunk of images, then the chunks are summed in order, so the
//! result does not depend on the number of threads. Groups of one input channel at stride 1
//! (LeNet's conv1) go to the direct kernels in `direct_conv` instead, where they apply, and
//! other convolutions at dilation 1 to `implicit_gemm` (AVX-512 or AVX2 CPUs; strided ones for
//! the forward pass and the weight gradient only), whose stride-1 input gradient over narrow
//! planes goes to `row_input_grad` where that computes fewer products.

use super::Conv2dHostKernels;
use super::cpu_direct as direct_conv;
use super::cpu_implicit_gemm as implicit_gemm;
use super::cpu_row_input_grad as row_input_grad;
use super::im2col::{col2im, im2col};
use crate::cpu::CpuBackend;
use crate::cpu::gemm::{Layout, Threads, sgemm};
use crate::cpu::reduce::add_in_order;
use crate::cpu::scratch::ScratchPool;
use crate::ops::activation::cpu::{epilogue, epilogue_parallel};
use crate::{Activation, Conv2dGeometry};
use rayon::prelude::*;

/// Columns (output positions) one forward / input-gradient task aims for. Measured on LeNet's
/// shapes (batch 256, 2 threads): 256–1024 are within noise of each other; more spills L2.
const TASK_COLS: usize = 512;

/// Columns per weight-gradient chunk (a function of the shape only, never of the thread count,
/// so the order of the final sum is fixed).
const WEIGHT_GRAD_COLS: usize = 1024;

/// Images lowered together by one task: enough columns for an efficient GEMM, while leaving
/// several tasks per thread.
fn images_per_task(g: &Conv2dGeometry, target_cols: usize) -> usize {
    let ohw = (g.oh * g.ow).max(1);
    let by_cols = (target_cols / ohw).max(1);
    let by_tasks = g.n.div_ceil(4 * rayon::current_num_threads()).max(1);
    by_cols.min(by_tasks)
}

/// Copies rows `co0..co0 + cog` of every image in `src` (`nb` images of `[c_out, ohw]`) into
/// `dst` as one `[cog, nb * ohw]` matrix.
fn gather_rows(
    src: &[f32],
    nb: usize,
    c_out: usize,
    ohw: usize,
    co0: usize,
    cog: usize,
    dst: &mut [f32],
) {
    let cols = nb * ohw;
    for i in 0..nb {
        for cl in 0..cog {
            let from = (i * c_out + co0 + cl) * ohw;
            dst[cl * cols + i * ohw..cl * cols + (i + 1) * ohw]
                .copy_from_slice(&src[from..from + ohw]);
        }
    }
}

/// `y = act(conv(x, w) + bias)`: the activation runs over each task's output block as soon as
/// it is complete, while it is still in cache.
fn forward(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    y: &mut [f32],
) {
    let (cig, cog, ohw) = (g.c_in_per_group(), g.c_out_per_group(), g.oh * g.ow);
    let kk = cig * g.kh * g.kw;
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * ohw);
    if y.is_empty() {
        return;
    }
    let bias_of = |co: usize| bias.map_or(0.0, |b| b[co]);
    if kk == 0 || img_in == 0 {
        for (i, v) in y.iter_mut().enumerate() {
            *v = bias_of((i / ohw) % g.c_out);
        }
        return epilogue_parallel(act, y);
    }
    if direct_conv::applies(g) {
        return direct_conv::forward(pool, g, x, w, bias, act, y);
    }
    if implicit_gemm::applies(g) {
        return implicit_gemm::forward(pool, g, x, w, bias, act, y);
    }
    let b = images_per_task(g, TASK_COLS);
    y.par_chunks_mut(b * img_out)
        .zip(x.par_chunks(b * img_in))
        .for_each(|(yc, xc)| {
            let nb = yc.len() / img_out;
            let cols = nb * ohw;
            let mut col = pool.take(kk * cols);
            let mut tmp = pool.take(if nb > 1 { cog * cols } else { 0 });
            for grp in 0..g.spec.groups {
                for i in 0..nb {
                    im2col(
                        g,
                        &xc[i * img_in..(i + 1) * img_in],
                        grp * cig,
                        &mut col,
                        cols,
                        i * ohw,
                    );
                }
                let wg = &w[grp * cog * kk..(grp + 1) * cog * kk];
                if nb == 1 {
                    // One image: its group's output rows are contiguous; start them at the bias
                    // and accumulate the product in place (no scatter).
                    let out = &mut yc[grp * cog * ohw..(grp + 1) * cog * ohw];
                    for (cl, row) in out.chunks_mut(ohw).enumerate() {
                        row.fill(bias_of(grp * cog + cl));
                    }
                    sgemm(
                        wg,
                        Layout::row_major(cog, kk),
                        &col,
                        Layout::row_major(kk, cols),
                        out,
                        Layout::row_major(cog, ohw),
                        true,
                        Threads::Single,
                    );
                    continue;
                }
                sgemm(
                    wg,
                    Layout::row_major(cog, kk),
                    &col,
                    Layout::row_major(kk, cols),
                    &mut tmp,
                    Layout::row_major(cog, cols),
                    false,
                    Threads::Single,
                );
                // Scatter to NCHW, adding the bias on the way (the data is hot in cache).
                for i in 0..nb {
                    for cl in 0..cog {
                        let co = grp * cog + cl;
                        let bv = bias_of(co);
                        let src = &tmp[cl * cols + i * ohw..cl * cols + (i + 1) * ohw];
                        let dst = &mut yc[(i * g.c_out + co) * ohw..(i * g.c_out + co + 1) * ohw];
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d = s + bv;
                        }
                    }
                }
            }
            epilogue(act, yc);
        });
}

/// `grad_x` from `grad_y` and the weight: GEMM into columns, then col2im.
fn backward_input(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    grad_y: &[f32],
    w: &[f32],
    grad_x: &mut [f32],
) {
    let (cig, cog, ohw) = (g.c_in_per_group(), g.c_out_per_group(), g.oh * g.ow);
    let kk = cig * g.kh * g.kw;
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * ohw);
    if grad_x.is_empty() {
        return;
    }
    if kk == 0 || img_out == 0 {
        grad_x.fill(0.0);
        return;
    }
    if row_input_grad::applies(g) {
        return row_input_grad::backward_input(pool, g, grad_y, w, grad_x);
    }
    if implicit_gemm::input_grad_applies(g) {
        return implicit_gemm::backward_input(pool, g, grad_y, w, grad_x);
    }
    if implicit_gemm::strided_input_grad_applies(g) {
        return implicit_gemm::backward_input_strided(pool, g, grad_y, w, grad_x);
    }
    let b = images_per_task(g, TASK_COLS);
    grad_x
        .par_chunks_mut(b * img_in)
        .zip(grad_y.par_chunks(b * img_out))
        .for_each(|(gxc, gyc)| {
            let nb = gxc.len() / img_in;
            let cols = nb * ohw;
            gxc.fill(0.0);
            let mut gcol = pool.take(kk * cols);
            let mut gyt = pool.take(if nb > 1 { cog * cols } else { 0 });
            for grp in 0..g.spec.groups {
                let (gy_mat, gy_layout) = if nb > 1 {
                    gather_rows(gyc, nb, g.c_out, ohw, grp * cog, cog, &mut gyt);
                    (&gyt[..], Layout::row_major(cog, cols))
                } else {
                    (&gyc[grp * cog * ohw..], Layout::row_major(cog, ohw))
                };
                let wg = &w[grp * cog * kk..(grp + 1) * cog * kk];
                sgemm(
                    wg,
                    Layout::row_major(cog, kk).t(),
                    gy_mat,
                    gy_layout,
                    &mut gcol,
                    Layout::row_major(kk, cols),
                    false,
                    Threads::Single,
                );
                for i in 0..nb {
                    col2im(
                        g,
                        &gcol,
                        cols,
                        i * ohw,
                        grp * cig,
                        &mut gxc[i * img_in..(i + 1) * img_in],
                    );
                }
            }
        });
}

/// `grad_w` from the input and `grad_y`, reduced per fixed chunk of images then summed in order.
fn backward_weight(
    pool: &ScratchPool,
    g: &Conv2dGeometry,
    x: &[f32],
    grad_y: &[f32],
    grad_w: &mut [f32],
) {
    let (cig, cog, ohw) = (g.c_in_per_group(), g.c_out_per_group(), g.oh * g.ow);
    let kk = cig * g.kh * g.kw;
    let (img_in, img_out) = (g.c_in * g.h * g.w, g.c_out * ohw);
    grad_w.fill(0.0);
    if grad_w.is_empty() || g.n == 0 || img_in == 0 || img_out == 0 {
        return;
    }
    if direct_conv::weight_grad_applies(g) {
        return direct_conv::backward_weight(pool, g, x, grad_y, grad_w);
    }
    if implicit_gemm::applies(g) {
        return implicit_gemm::backward_weight(pool, g, x, grad_y, grad_w, None);
    }
    // Chunk size depends on the shape only (not on the thread count): deterministic sums.
    let b = ((WEIGHT_GRAD_COLS / ohw.max(1)).max(1)).min(g.n);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(b * img_in)
        .zip(grad_y.par_chunks(b * img_out))
        .map(|(xc, gyc)| {
            let nb = xc.len() / img_in;
            let cols = nb * ohw;
            let mut partial = vec![0.0f32; g.c_out * kk];
            let mut col = pool.take(kk * cols);
            let mut gyt = pool.take(cog * cols);
            for grp in 0..g.spec.groups {
                for i in 0..nb {
                    im2col(
                        g,
                        &xc[i * img_in..(i + 1) * img_in],
                        grp * cig,
                        &mut col,
                        cols,
                        i * ohw,
                    );
                }
                gather_rows(gyc, nb, g.c_out, ohw, grp * cog, cog, &mut gyt);
                sgemm(
                    &gyt,
                    Layout::row_major(cog, cols),
                    &col,
                    Layout::row_major(kk, cols).t(),
                    &mut partial[grp * cog * kk..(grp + 1) * cog * kk],
                    Layout::row_major(cog, kk),
                    false,
                    Threads::Single,
                );
            }
            partial
        })
        .collect();
    add_in_order(grad_w, &partials);
}

impl Conv2dHostKernels for CpuBackend {
    fn forward(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        act: Option<Activation>,
        y: &mut [f32],
    ) {
        forward(self.scratch(), g, x, w, bias, act, y)
    }
    fn backward_input(&self, g: &Conv2dGeometry, grad_y: &[f32], w: &[f32], grad_x: &mut [f32]) {
        backward_input(self.scratch(), g, grad_y, w, grad_x)
    }
    fn backward_weight(&self, g: &Conv2dGeometry, x: &[f32], grad_y: &[f32], grad_w: &mut [f32]) {
        backward_weight(self.scratch(), g, x, grad_y, grad_w)
    }
    /// The implicit GEMM sums the bias from each chunk's gradient while it is in cache,
    /// instead of a pass of its own over `grad_y` (ResNet's convs, whose bias gradient no fused
    /// activation sums).
    fn backward_weight_and_bias(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        grad_y: &[f32],
        grad_w: &mut [f32],
        grad_b: &mut [f32],
    ) -> bool {
        let fused = !direct_conv::weight_grad_applies(g) && implicit_gemm::applies(g);
        if fused {
            implicit_gemm::backward_weight(self.scratch(), g, x, grad_y, grad_w, Some(grad_b));
        }
        fused
    }
}
