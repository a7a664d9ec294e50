//! `lenet summary`: d2l's shape walk plus every layer (blocks and the layers inside them, by
//! full name) with its output shape, parameters, buffers and FLOPs, the output-size formula of
//! every conv and pool layer, what a fully connected layer would cost in each conv's place, and
//! the state dict's names, dtypes and shapes.

use crate::cli::SummaryArgs;
use crate::config::{NormalizeSpec, choice_name};
use crate::models::ModelKind;
use anyhow::Context;
use conv_kernels::Device;
use nn_layers::{Buffer, Module, ModuleRng, ModuleVisitor, Param, TrainingFlag, Window};
use std::fmt::Write;
use tensor::SeededRng;

/// Formats a count with thousands separators (`61,706`).
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn dims_str(d: &[usize]) -> String {
    format!("{d:?}")
}

/// One row of the nested summary: a module (a layer or a block) with its full name.
#[derive(Clone, Debug)]
pub struct Row {
    /// Full name (`1.0.conv1`), the prefix of its parameter names.
    pub name: String,
    /// Nesting depth (0: a child of the model).
    pub depth: usize,
    /// Module kind (`Conv2d`, `Residual`, ...).
    pub kind: &'static str,
    /// Input dimensions.
    pub input: Vec<usize>,
    /// Output dimensions.
    pub output: Vec<usize>,
    /// Trainable values in the module and everything inside it.
    pub params: usize,
    /// Buffer values (batch norm's running statistics and counter) inside it.
    pub buffers: usize,
    /// Forward FLOPs (everything inside included).
    pub flops: u64,
    /// The conv or pool window, when the module has one.
    pub window: Option<Window>,
}

/// Walks a module's children in visiting order, feeding each the input its parent's forward
/// feeds it: a `Sequential`'s children in a chain, a `Residual`'s as its forward does
/// (`conv1` and the shortcut `conv3` take the block's input, `bn1` and `conv2` `conv1`'s
/// output, `bn2` `conv2`'s). Shapes come from each module's `LayerInfo`, so nothing runs.
struct Walk<'a> {
    prefix: String,
    depth: usize,
    parent: &'static str,
    input: Vec<usize>,
    chained: Vec<usize>,
    outputs: Vec<(String, Vec<usize>)>,
    rows: &'a mut Vec<Row>,
    error: Option<anyhow::Error>,
}

impl Walk<'_> {
    fn output_of(&self, name: &str) -> Vec<usize> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| self.chained.clone(), |(_, d)| d.clone())
    }

    fn visit_child(&mut self, name: &str, child: &dyn Module) -> anyhow::Result<()> {
        let input = match (self.parent, name) {
            ("Residual", "conv1" | "conv3") => self.input.clone(),
            ("Residual", "bn1" | "conv2") => self.output_of("conv1"),
            ("Residual", "bn2") => self.output_of("conv2"),
            _ => self.chained.clone(),
        };
        let full = format!("{}{name}", self.prefix);
        let info = child
            .layer_info()
            .with_context(|| format!("{full} ({}) cannot tell its shapes", child.kind()))?;
        let output = info
            .output_dims(&input)
            .with_context(|| format!("{full} ({})", child.kind()))?;
        let flops = info.flops(&input)?;
        self.rows.push(Row {
            name: full.clone(),
            depth: self.depth,
            kind: child.kind(),
            input: input.clone(),
            output: output.clone(),
            params: child.num_parameters(),
            buffers: child
                .named_buffers()
                .iter()
                .map(|(_, b)| b.dims().iter().product::<usize>())
                .sum(),
            flops,
            window: info.window(),
        });
        let mut inner = Walk {
            prefix: format!("{full}."),
            depth: self.depth + 1,
            parent: child.kind(),
            chained: input.clone(),
            input,
            outputs: Vec::new(),
            rows: self.rows,
            error: None,
        };
        child.visit(&mut inner);
        if let Some(e) = inner.error {
            return Err(e);
        }
        self.outputs.push((name.to_string(), output.clone()));
        self.chained = output;
        Ok(())
    }
}

impl ModuleVisitor for Walk<'_> {
    fn param(&mut self, _: &str, _: &Param) {}
    fn buffer(&mut self, _: &str, _: &Buffer) {}
    fn rng(&mut self, _: &str, _: &ModuleRng) {}
    fn training_flag(&mut self, _: &TrainingFlag) {}
    fn child(&mut self, name: &str, child: &dyn Module) {
        if self.error.is_none()
            && let Err(e) = self.visit_child(name, child)
        {
            self.error = Some(e);
        }
    }
}

/// Every module inside `model` (depth first, as `Module::for_each_module` names them) with its
/// input and output shapes, parameters, buffers and FLOPs for an input of `input` dimensions.
pub fn nested_rows(model: &dyn Module, input: &[usize]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut walk = Walk {
        prefix: String::new(),
        depth: 0,
        parent: model.kind(),
        input: input.to_vec(),
        chained: input.to_vec(),
        outputs: Vec::new(),
        rows: &mut rows,
        error: None,
    };
    model.visit(&mut walk);
    if let Some(e) = walk.error {
        return Err(e);
    }
    Ok(rows)
}

/// The report as text, for an input of `[batch, 1, 28, 28]`... as d2l feeds `X` of `(1, 1, 28, 28)`.
pub fn render(model: ModelKind, batch: usize) -> anyhow::Result<String> {
    // Parameters are needed only for their counts; the reference device builds them cheaply.
    let net = model.build(&Device::Reference, &mut SeededRng::new(0))?;
    let input = vec![batch, 1, 28, 28];
    let rows = nested_rows(net.module(), &input)?;
    let top: Vec<&Row> = rows.iter().filter(|r| r.depth == 0).collect();
    let has_buffers = rows.iter().any(|r| r.buffers > 0);
    let mut out = String::new();
    let spec = model.spec();
    let r = spec.recipe;
    writeln!(out, "{}, input {}", spec.title, dims_str(&input))?;
    writeln!(
        out,
        "Default recipe: {}, lr {}, {} schedule, batch {}, {} epochs; {}",
        choice_name(r.optimizer),
        r.lr,
        choice_name(r.schedule),
        r.batch_size,
        r.epochs,
        r.init
    )?;
    if r.momentum > 0.0 || r.weight_decay > 0.0 {
        writeln!(
            out,
            "  momentum {}{}, weight decay {} (not on batch norm)",
            r.momentum,
            if r.nesterov { " (Nesterov)" } else { "" },
            r.weight_decay
        )?;
    }
    if !r.augment.is_none() || r.normalize.is_some() {
        writeln!(
            out,
            "  data: augment {}, normalize {}",
            r.augment,
            NormalizeSpec::describe(r.normalize)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Shape walk (as d2l prints it):")?;
    for r in &top {
        writeln!(out, "{} output shape:\t{}", r.kind, dims_str(&r.output))?;
    }
    writeln!(out)?;
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    let kw = rows.iter().map(|r| r.kind.len()).max().unwrap_or(0).max(10);
    let buffers_head = if has_buffers {
        format!(" {:>8}", "buffers")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{:<w$} {:<kw$} {:>20} {:>10}{buffers_head} {:>16}",
        "name", "layer", "output", "params", "FLOPs (forward)"
    )?;
    let mut total_params = 0u64;
    let mut total_buffers = 0u64;
    let mut total_flops = 0u64;
    for r in &rows {
        if r.depth == 0 {
            total_params += r.params as u64;
            total_buffers += r.buffers as u64;
            total_flops += r.flops;
        }
        let buffers = if has_buffers {
            format!(" {:>8}", thousands(r.buffers as u64))
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:<w$} {:<kw$} {:>20} {:>10}{buffers} {:>16}",
            r.name,
            r.kind,
            dims_str(&r.output),
            thousands(r.params as u64),
            thousands(r.flops)
        )?;
    }
    let buffers = if has_buffers {
        format!(" {:>8}", thousands(total_buffers))
    } else {
        String::new()
    };
    writeln!(
        out,
        "total{:>width$}{buffers} {:>16}",
        thousands(total_params),
        thousands(total_flops),
        width = w + kw + 28
    )?;
    writeln!(
        out,
        "(FLOPs: a multiply-add counts 2; per batch of {batch}; a block's row includes its layers, the total counts each once)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Output sizes, out = ⌊(in + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1:"
    )?;
    for r in &rows {
        if let Some(win) = &r.window {
            for (axis, label) in [(0usize, "height"), (1, "width")] {
                let i = r.input[2 + axis];
                let o = r.output[2 + axis];
                writeln!(
                    out,
                    "  {} {:<7} {label:<6}: ⌊({i} + 2·{} − {}·({} − 1) − 1) / {}⌋ + 1 = {o}",
                    r.name,
                    r.kind,
                    win.padding[axis],
                    win.dilation[axis],
                    win.kernel[axis],
                    win.stride[axis]
                )?;
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "Weight sharing: each conv layer against a fully connected layer with the same input and output:"
    )?;
    for r in &rows {
        if r.kind == "Conv2d" {
            let fan_in: u64 = r.input[1..].iter().product::<usize>() as u64;
            let fan_out: u64 = r.output[1..].iter().product::<usize>() as u64;
            let dense = fan_in * fan_out + fan_out;
            writeln!(
                out,
                "  {} Conv2d {} → {}: {} parameters; fully connected: {} × {} + {} = {} ({:.0}× more)",
                r.name,
                dims_str(&r.input[1..]),
                dims_str(&r.output[1..]),
                thousands(r.params as u64),
                thousands(fan_in),
                thousands(fan_out),
                thousands(fan_out),
                thousands(dense),
                dense as f64 / r.params.max(1) as f64
            )?;
        }
    }
    writeln!(out)?;
    let params = net.named_parameters();
    let buffers = net.module().named_buffers();
    writeln!(
        out,
        "State dict (PyTorch names): {} parameters ({} values), {} buffers ({} values):",
        params.len(),
        thousands(total_params),
        buffers.len(),
        thousands(total_buffers)
    )?;
    let sw = params
        .iter()
        .map(|(n, _)| n.len())
        .chain(buffers.iter().map(|(n, _)| n.len()))
        .max()
        .unwrap_or(0);
    for (name, p) in &params {
        writeln!(out, "  {name:<sw$}  param   F32  {}", dims_str(&p.dims()))?;
    }
    for (name, b) in &buffers {
        writeln!(
            out,
            "  {name:<sw$}  buffer  {}  {}",
            b.kind().dtype(),
            dims_str(&b.dims())
        )?;
    }
    Ok(out)
}

/// Prints the summary.
pub fn run(args: SummaryArgs) -> anyhow::Result<()> {
    print!("{}", render(args.model, args.batch as usize)?);
    Ok(())
}

/// The rows, for tests.
#[cfg(test)]
fn rows(model: ModelKind, batch: usize) -> anyhow::Result<Vec<Row>> {
    let net = model.build(&Device::Reference, &mut SeededRng::new(0))?;
    nested_rows(net.module(), &[batch, 1, 28, 28])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_shape_walk_matches_d2l() {
        let text = render(ModelKind::Seed, 1).unwrap();
        let walk = [
            "Reshape output shape:\t[1, 1, 28, 28]",
            "Conv2d output shape:\t[1, 6, 28, 28]",
            "Sigmoid output shape:\t[1, 6, 28, 28]",
            "AvgPool2d output shape:\t[1, 6, 14, 14]",
            "Conv2d output shape:\t[1, 16, 10, 10]",
            "Sigmoid output shape:\t[1, 16, 10, 10]",
            "AvgPool2d output shape:\t[1, 16, 5, 5]",
            "Flatten output shape:\t[1, 400]",
            "Linear output shape:\t[1, 120]",
            "Sigmoid output shape:\t[1, 120]",
            "Linear output shape:\t[1, 84]",
            "Sigmoid output shape:\t[1, 84]",
            "Linear output shape:\t[1, 10]",
        ];
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("output shape:"))
            .collect();
        assert_eq!(lines, walk);
        assert!(text.contains("61,706"), "{text}");
        assert!(
            text.contains("Default recipe: sgd, lr 0.9, constant schedule, batch 256, 10 epochs"),
            "{text}"
        );
        assert!(
            text.contains("⌊(28 + 2·2 − 1·(5 − 1) − 1) / 1⌋ + 1 = 28"),
            "{text}"
        );
    }

    #[test]
    fn modern_has_same_sizes_and_params() {
        let rows = rows(ModelKind::Modern, 4).unwrap();
        assert!(rows.iter().all(|r| r.depth == 0 && r.buffers == 0));
        assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), 61_706);
        assert_eq!(rows.last().unwrap().output, vec![4, 10]);
        assert!(rows.iter().any(|r| r.kind == "MaxPool2d"));
    }

    #[test]
    fn nested_rows_of_the_resnet_follow_its_forward() {
        let rows = rows(ModelKind::ResnetSmall, 2).unwrap();
        let find = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
        let r = find("1.0.conv1");
        assert_eq!(
            (r.kind, r.depth, &r.output[..]),
            ("Conv2d", 2, &[2, 16, 28, 28][..])
        );
        // The downsampling block: conv1 halves, the shortcut conv3 takes the block's input.
        let r = find("2.0.conv3");
        assert_eq!(
            (&r.input[..], &r.output[..]),
            (&[2, 16, 28, 28][..], &[2, 32, 14, 14][..])
        );
        assert_eq!(find("2.0.bn2").input, [2, 32, 14, 14]);
        assert_eq!(find("3.1").output, [2, 64, 7, 7]);
        assert_eq!(find("6").output, [2, 10]);
        // Buffers: running mean and variance per channel, one counter, per batch norm.
        assert_eq!(find("0.1").buffers, 2 * 16 + 1);
        assert_eq!(find("1").buffers, 2 * (2 * (2 * 16 + 1)));
        let top: usize = rows.iter().filter(|r| r.depth == 0).map(|r| r.params).sum();
        assert_eq!(top, nn_layers::resnet::NUM_PARAMETERS);
        // A block's FLOPs are its layers' plus the element-wise work around them.
        let block = find("1.0").flops;
        let inner: u64 = rows
            .iter()
            .filter(|r| r.name.starts_with("1.0."))
            .map(|r| r.flops)
            .sum();
        assert!(block > inner, "{block} {inner}");

        let text = render(ModelKind::ResnetSmall, 1).unwrap();
        for needle in [
            "1.0.conv1",
            "[1, 16, 28, 28]",
            "175,338",
            "Sequential output shape:\t[1, 64, 7, 7]",
            "3.1.bn2.num_batches_tracked",
            "buffer  I64  []",
            "momentum 0.9 (Nesterov), weight decay 0.0005",
            "data: augment crop:2,flip, normalize 0.286,0.353",
            "2.0.conv1 Conv2d  height: ⌊(28 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = 14",
        ] {
            assert!(text.contains(needle), "{needle} in:\n{text}");
        }
    }

    #[test]
    fn nested_rows_of_nin() {
        let rows = rows(ModelKind::NinSmall, 1).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(&names[..7], ["0", "0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
        let r = rows.iter().find(|r| r.name == "5.4").unwrap();
        assert_eq!((r.kind, &r.output[..]), ("Conv2d", &[1, 10, 6, 6][..]));
        let top: usize = rows.iter().filter(|r| r.depth == 0).map(|r| r.params).sum();
        assert_eq!(top, nn_layers::nin::NUM_PARAMETERS);
        let text = render(ModelKind::NinSmall, 1).unwrap();
        assert!(
            text.contains("35,750") && text.contains("Dropout output shape:\t[1, 64, 6, 6]"),
            "{text}"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(61706), "61,706");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
