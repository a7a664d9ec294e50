//! Window arithmetic shared by the ops that slide a window over an image (conv2d, pool2d):
//! output sizes and rank checks, with errors naming the op.

use crate::error::{Result, shape_err};
use tensor::Shape;

pub(crate) fn out_size(
    op: &'static str,
    axis: &str,
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<usize> {
    let span = dilation * (kernel - 1) + 1;
    let padded = input + 2 * padding;
    if span > padded {
        return Err(shape_err(
            op,
            format!("{axis} extent (input {input} + 2×padding {padding})"),
            format!(">= {span} (kernel {kernel}, dilation {dilation})"),
            padded,
        ));
    }
    Ok((padded - span) / stride + 1)
}

pub(crate) fn expect_rank(op: &'static str, what: &str, s: &Shape, rank: usize) -> Result<()> {
    if s.rank() != rank {
        return Err(shape_err(op, what, format!("rank {rank}"), s));
    }
    Ok(())
}
