//! Op descriptions shared by every backend: settings, shape rules and input validation.
//!
//! A spec's `check` turns input shapes into a resolved geometry (every size an op needs), or a
//! typed error naming the op, the input, and the expected and found shapes. Backends only ever
//! see checked geometries, so they never index out of bounds.

use crate::error::{Result, shape_err, spec_err};
use tensor::Shape;

fn out_size(
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

fn expect_rank(op: &'static str, what: &str, s: &Shape, rank: usize) -> Result<()> {
    if s.rank() != rank {
        return Err(shape_err(op, what, format!("rank {rank}"), s));
    }
    Ok(())
}

/// 2-D convolution settings (PyTorch `nn.Conv2d` semantics), each pair as `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Step between output positions.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Channel groups; input and output channels must both divide by it.
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Every size a conv2d kernel needs, resolved from checked input shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// The settings.
    pub spec: Conv2dSpec,
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Conv2dGeometry {
    /// Input channels per group.
    pub fn c_in_per_group(&self) -> usize {
        self.c_in / self.spec.groups
    }
    /// Output channels per group.
    pub fn c_out_per_group(&self) -> usize {
        self.c_out / self.spec.groups
    }
    /// Shape of the input `[n, c_in, h, w]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }
    /// Shape of the weight `[c_out, c_in / groups, kh, kw]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [self.c_out, self.c_in_per_group(), self.kh, self.kw]
    }
    /// Shape of the output `[n, c_out, oh, ow]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.c_out, self.oh, self.ow]
    }
    /// Multiply-adds of the forward pass, times two (FLOPs).
    pub fn forward_flops(&self) -> u64 {
        2 * (self.n * self.c_out * self.oh * self.ow * self.c_in_per_group() * self.kh * self.kw)
            as u64
    }
}

impl Conv2dSpec {
    /// Settings with the same stride and padding on both axes, no dilation, one group.
    pub fn new(stride: usize, padding: usize) -> Self {
        Self {
            stride: [stride; 2],
            padding: [padding; 2],
            ..Self::default()
        }
    }

    /// Output height and width for an input of `[h, w]` and a kernel of `[kh, kw]`:
    /// `(in + 2p − d(k−1) − 1) / s + 1` per axis.
    pub fn out_hw(&self, input: [usize; 2], kernel: [usize; 2]) -> Result<[usize; 2]> {
        self.check_settings()?;
        if kernel.contains(&0) {
            return Err(spec_err("conv2d", "kernel size must be positive"));
        }
        let oh = out_size(
            "conv2d",
            "height",
            input[0],
            kernel[0],
            self.stride[0],
            self.padding[0],
            self.dilation[0],
        )?;
        let ow = out_size(
            "conv2d",
            "width",
            input[1],
            kernel[1],
            self.stride[1],
            self.padding[1],
            self.dilation[1],
        )?;
        Ok([oh, ow])
    }

    fn check_settings(&self) -> Result<()> {
        if self.stride.contains(&0) {
            return Err(spec_err("conv2d", "stride must be positive"));
        }
        if self.dilation.contains(&0) {
            return Err(spec_err("conv2d", "dilation must be positive"));
        }
        if self.groups == 0 {
            return Err(spec_err("conv2d", "groups must be positive"));
        }
        Ok(())
    }

    /// Validates input `[n, c_in, h, w]`, weight `[c_out, c_in/groups, kh, kw]` and bias `[c_out]`.
    pub fn check(&self, x: &Shape, weight: &Shape, bias: Option<&Shape>) -> Result<Conv2dGeometry> {
        const OP: &str = "conv2d";
        self.check_settings()?;
        expect_rank(OP, "input", x, 4)?;
        expect_rank(OP, "weight", weight, 4)?;
        let [n, c_in, h, w] = [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]];
        let wd = weight.dims();
        let (c_out, kh, kw) = (wd[0], wd[2], wd[3]);
        let g = self.groups;
        if c_in % g != 0 {
            return Err(spec_err(
                OP,
                format!("input channels {c_in} are not divisible by groups {g}"),
            ));
        }
        if c_out % g != 0 {
            return Err(spec_err(
                OP,
                format!("output channels {c_out} are not divisible by groups {g}"),
            ));
        }
        if wd[1] != c_in / g {
            return Err(shape_err(
                OP,
                "weight",
                format!(
                    "[{c_out}, {}, {kh}, {kw}] (input has {c_in} channels, groups {g})",
                    c_in / g
                ),
                weight,
            ));
        }
        if let Some(b) = bias
            && b.dims() != [c_out]
        {
            return Err(shape_err(OP, "bias", format!("[{c_out}]"), b));
        }
        let [oh, ow] = self.out_hw([h, w], [kh, kw])?;
        Ok(Conv2dGeometry {
            spec: *self,
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            oh,
            ow,
        })
    }
}

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Maximum of the window (padding never wins).
    Max,
    /// Mean of the window, padding counted as zeros (PyTorch's `count_include_pad=True`).
    Avg,
}

/// 2-D pooling settings (PyTorch defaults: `ceil_mode=False`), pairs as `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit padding on each side; at most half the kernel, as PyTorch requires.
    pub padding: [usize; 2],
}

/// Every size a pooling kernel needs, resolved from a checked input shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    /// The settings.
    pub spec: Pool2dSpec,
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Pool2dGeometry {
    /// Shape of the input `[n, c, h, w]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    /// Shape of the output `[n, c, oh, ow]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }
}

impl Pool2dSpec {
    /// A square window with the same stride and padding on both axes.
    pub fn new(kind: PoolKind, kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            kind,
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 2],
        }
    }

    /// The op's name, for error messages.
    pub fn op_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "max_pool2d",
            PoolKind::Avg => "avg_pool2d",
        }
    }

    /// Validates an input `[n, c, h, w]` against the settings.
    pub fn check(&self, x: &Shape) -> Result<Pool2dGeometry> {
        let op = self.op_name();
        if self.kernel.contains(&0) {
            return Err(spec_err(op, "kernel size must be positive"));
        }
        if self.stride.contains(&0) {
            return Err(spec_err(op, "stride must be positive"));
        }
        for axis in 0..2 {
            if 2 * self.padding[axis] > self.kernel[axis] {
                return Err(spec_err(
                    op,
                    format!(
                        "padding {} must be at most half the kernel size {}",
                        self.padding[axis], self.kernel[axis]
                    ),
                ));
            }
        }
        expect_rank(op, "input", x, 4)?;
        let d = x.dims();
        let oh = out_size(
            op,
            "height",
            d[2],
            self.kernel[0],
            self.stride[0],
            self.padding[0],
            1,
        )?;
        let ow = out_size(
            op,
            "width",
            d[3],
            self.kernel[1],
            self.stride[1],
            self.padding[1],
            1,
        )?;
        Ok(Pool2dGeometry {
            spec: *self,
            n: d[0],
            c: d[1],
            h: d[2],
            w: d[3],
            oh,
            ow,
        })
    }
}

/// Matrix product settings: `C = op(A) · op(B) (+ bias per column)`, op = optional transpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatmulSpec {
    /// Use Aᵀ: A is stored `[k, m]`.
    pub trans_a: bool,
    /// Use Bᵀ: B is stored `[n, k]`.
    pub trans_b: bool,
}

/// Sizes of a checked matrix product: `C[m, n] = op(A)[m, k] · op(B)[k, n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulGeometry {
    /// The settings.
    pub spec: MatmulSpec,
    /// Rows of C.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of C.
    pub n: usize,
}

impl MatmulGeometry {
    /// Multiply-adds times two.
    pub fn flops(&self) -> u64 {
        2 * (self.m * self.k * self.n) as u64
    }
}

impl MatmulSpec {
    /// Validates rank-2 operands and an optional bias of length n.
    pub fn check(&self, a: &Shape, b: &Shape, bias: Option<&Shape>) -> Result<MatmulGeometry> {
        const OP: &str = "matmul";
        expect_rank(OP, "A", a, 2)?;
        expect_rank(OP, "B", b, 2)?;
        let (m, k) = if self.trans_a {
            (a.dims()[1], a.dims()[0])
        } else {
            (a.dims()[0], a.dims()[1])
        };
        let (kb, n) = if self.trans_b {
            (b.dims()[1], b.dims()[0])
        } else {
            (b.dims()[0], b.dims()[1])
        };
        if k != kb {
            return Err(shape_err(
                OP,
                format!("inner dimension of B (trans_b = {})", self.trans_b),
                k,
                format!("{kb} (A {a}, B {b}, trans_a = {})", self.trans_a),
            ));
        }
        if let Some(bs) = bias
            && bs.dims() != [n]
        {
            return Err(shape_err(OP, "bias", format!("[{n}]"), bs));
        }
        Ok(MatmulGeometry {
            spec: *self,
            m,
            k,
            n,
        })
    }
}

/// Element-wise activation functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `1 / (1 + e^-x)`, computed without overflow for any finite x.
    Sigmoid,
    /// `max(x, 0)`; its gradient at 0 is 0, as in PyTorch.
    Relu,
    /// Hyperbolic tangent.
    Tanh,
}

impl Activation {
    /// The op's name, for error messages.
    pub fn op_name(&self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    /// The activation of one value (the definition every backend follows).
    pub fn apply(&self, x: f32) -> f32 {
        match self {
            Activation::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
        }
    }

    /// The derivative expressed through the activation's *output* `y` (what backward stores).
    pub fn derivative_from_output(&self, y: f32) -> f32 {
        match self {
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - y * y,
        }
    }
}

/// Sizes of a checked softmax cross-entropy: logits `[n, classes]`, `n` labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CrossEntropyGeometry {
    /// Batch size.
    pub n: usize,
    /// Number of classes.
    pub classes: usize,
}

impl CrossEntropyGeometry {
    /// Validates logits `[n, classes]` against `labels` of length n (values checked by backends).
    pub fn check(logits: &Shape, labels: usize) -> Result<Self> {
        const OP: &str = "softmax_cross_entropy";
        expect_rank(OP, "logits", logits, 2)?;
        let (n, classes) = (logits.dims()[0], logits.dims()[1]);
        if labels != n {
            return Err(shape_err(
                OP,
                "labels",
                format!("{n} (one per logits row)"),
                labels,
            ));
        }
        if n == 0 || classes == 0 {
            return Err(shape_err(OP, "logits", "[n >= 1, classes >= 1]", logits));
        }
        Ok(Self { n, classes })
    }
}

/// Stochastic gradient descent settings (PyTorch `torch.optim.SGD`, dampening 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 disables the buffer).
    pub momentum: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn plain(lr: f32) -> Self {
        Self {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// Rejects non-finite or negative settings.
    pub fn check(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        if !ok(self.lr) || !ok(self.momentum) || !ok(self.weight_decay) {
            return Err(spec_err(
                "sgd_step",
                format!("settings must be finite and >= 0: {self:?}"),
            ));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(spec_err("sgd_step", "nesterov needs a positive momentum"));
        }
        Ok(())
    }
}

/// Adam settings (PyTorch `torch.optim.Adam`, L2 weight decay, bias correction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Rejects non-finite, negative or out-of-range settings.
    pub fn check(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        let beta = |b: f32| (0.0..1.0).contains(&b);
        if !ok(self.lr)
            || !ok(self.eps)
            || !ok(self.weight_decay)
            || !beta(self.beta1)
            || !beta(self.beta2)
        {
            return Err(spec_err("adam_step", format!("invalid settings: {self:?}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    #[test]
    fn conv_output_formula() {
        let spec = Conv2dSpec::new(1, 2);
        let g = spec
            .check(&s(&[256, 1, 28, 28]), &s(&[6, 1, 5, 5]), Some(&s(&[6])))
            .unwrap();
        assert_eq!(g.output_dims(), [256, 6, 28, 28]);
        let spec = Conv2dSpec {
            stride: [2, 1],
            padding: [1, 0],
            dilation: [2, 1],
            groups: 1,
        };
        assert_eq!(spec.out_hw([9, 7], [3, 3]).unwrap(), [4, 5]);
    }

    #[test]
    fn conv_rejects_bad_inputs() {
        let x = s(&[1, 4, 8, 8]);
        let bad_groups = Conv2dSpec {
            groups: 3,
            ..Default::default()
        };
        assert!(bad_groups.check(&x, &s(&[3, 1, 3, 3]), None).is_err());
        assert!(
            Conv2dSpec::new(0, 0)
                .check(&x, &s(&[2, 4, 3, 3]), None)
                .is_err()
        );
        assert!(
            Conv2dSpec::new(1, 0)
                .check(&x, &s(&[2, 3, 3, 3]), None)
                .is_err()
        );
        assert!(
            Conv2dSpec::new(1, 0)
                .check(&x, &s(&[2, 4, 9, 9]), None)
                .is_err()
        );
        let e = Conv2dSpec::new(1, 0)
            .check(&x, &s(&[2, 4, 3, 3]), Some(&s(&[3])))
            .unwrap_err();
        assert!(e.to_string().contains("bias"), "{e}");
        assert!(
            Conv2dSpec::new(1, 0)
                .check(&s(&[4, 8, 8]), &s(&[2, 4, 3, 3]), None)
                .is_err()
        );
    }

    #[test]
    fn pool_and_matmul_shapes() {
        let p = Pool2dSpec::new(PoolKind::Avg, 2, 2, 0)
            .check(&s(&[2, 6, 28, 28]))
            .unwrap();
        assert_eq!(p.output_dims(), [2, 6, 14, 14]);
        assert!(
            Pool2dSpec::new(PoolKind::Max, 2, 2, 2)
                .check(&s(&[1, 1, 4, 4]))
                .is_err()
        );
        let m = MatmulSpec {
            trans_a: false,
            trans_b: true,
        }
        .check(&s(&[256, 400]), &s(&[120, 400]), Some(&s(&[120])))
        .unwrap();
        assert_eq!((m.m, m.k, m.n), (256, 400, 120));
        assert!(
            MatmulSpec::default()
                .check(&s(&[2, 3]), &s(&[2, 3]), None)
                .is_err()
        );
    }

    #[test]
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(Activation::Sigmoid.apply(1e4), 1.0);
        assert_eq!(Activation::Sigmoid.apply(-1e4), 0.0);
        assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-7);
    }
}
