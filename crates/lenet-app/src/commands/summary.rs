//! `lenet summary`: d2l's shape walk plus parameters, FLOPs, the output-size formula of every
//! conv and pool layer, and what a fully connected layer would cost in each conv's place.

use crate::cli::SummaryArgs;
use crate::config::choice_name;
use crate::models::ModelKind;
use conv_kernels::Device;
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

/// The report as text, for an input of `[batch, 1, 28, 28]`... as d2l feeds `X` of `(1, 1, 28, 28)`.
pub fn render(model: ModelKind, batch: usize) -> anyhow::Result<String> {
    // Parameters are needed only for their counts; the reference device builds them cheaply.
    let net = model.build(&Device::Reference, &mut SeededRng::new(0))?;
    let input = vec![batch, 1, 28, 28];
    let rows = net.layer_summaries(&input)?;
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
    writeln!(out)?;
    writeln!(out, "Shape walk (as d2l prints it):")?;
    for r in &rows {
        writeln!(
            out,
            "{} output shape:\t{}",
            r.kind,
            dims_str(&r.output_dims)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<4} {:<10} {:>20} {:>10} {:>16}",
        "name", "layer", "output", "params", "FLOPs (forward)"
    )?;
    let mut total_params = 0u64;
    let mut total_flops = 0u64;
    for r in &rows {
        total_params += r.params as u64;
        total_flops += r.flops.unwrap_or(0);
        writeln!(
            out,
            "{:<4} {:<10} {:>20} {:>10} {:>16}",
            r.name,
            r.kind,
            dims_str(&r.output_dims),
            thousands(r.params as u64),
            r.flops.map_or_else(|| "?".into(), thousands)
        )?;
    }
    writeln!(
        out,
        "total{:>42} {:>16}",
        thousands(total_params),
        thousands(total_flops)
    )?;
    writeln!(
        out,
        "(FLOPs: a multiply-add counts 2; per batch of {batch})"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Output sizes, out = ⌊(in + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1:"
    )?;
    let mut in_dims = input.clone();
    for r in &rows {
        if let Some(w) = &r.window {
            for (axis, label) in [(0usize, "height"), (1, "width")] {
                let i = in_dims[2 + axis];
                let o = r.output_dims[2 + axis];
                writeln!(
                    out,
                    "  {} {:<7} {label:<6}: ⌊({i} + 2·{} − {}·({} − 1) − 1) / {}⌋ + 1 = {o}",
                    r.name,
                    r.kind,
                    w.padding[axis],
                    w.dilation[axis],
                    w.kernel[axis],
                    w.stride[axis]
                )?;
            }
        }
        in_dims = r.output_dims.clone();
    }
    writeln!(out)?;
    writeln!(
        out,
        "Weight sharing: each conv layer against a fully connected layer with the same input and output:"
    )?;
    let mut in_dims = input;
    for r in &rows {
        if r.kind == "Conv2d" {
            let fan_in: u64 = in_dims[1..].iter().product::<usize>() as u64;
            let fan_out: u64 = r.output_dims[1..].iter().product::<usize>() as u64;
            let dense = fan_in * fan_out + fan_out;
            writeln!(
                out,
                "  {} Conv2d {} → {}: {} parameters; fully connected: {} × {} + {} = {} ({:.0}× more)",
                r.name,
                dims_str(&in_dims[1..]),
                dims_str(&r.output_dims[1..]),
                thousands(r.params as u64),
                thousands(fan_in),
                thousands(fan_out),
                thousands(fan_out),
                thousands(dense),
                dense as f64 / r.params.max(1) as f64
            )?;
        }
        in_dims = r.output_dims.clone();
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
fn rows(model: ModelKind, batch: usize) -> anyhow::Result<Vec<nn_layers::LayerSummary>> {
    let net = model.build(&Device::Reference, &mut SeededRng::new(0))?;
    net.layer_summaries(&[batch, 1, 28, 28])
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
        assert_eq!(rows.iter().map(|r| r.params).sum::<usize>(), 61_706);
        assert_eq!(rows.last().unwrap().output_dims, vec![4, 10]);
        assert!(rows.iter().any(|r| r.kind == "MaxPool2d"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(61706), "61,706");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
