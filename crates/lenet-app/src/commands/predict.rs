//! `lenet predict`: the three most likely classes for PNG images or test-set items.

use crate::cli::PredictArgs;
use crate::data;
use crate::image_input::{SIDE, load_png_as_input};
use crate::inference::{model_input, probabilities};
use crate::restore::restore;
use anyhow::bail;
use datasets::Split;
use tensor::Tensor;

/// Runs `lenet predict`; returns the top-3 (class, probability) per input.
pub fn run(args: PredictArgs) -> anyhow::Result<Vec<Vec<(usize, f32)>>> {
    let r = restore(&args.checkpoint, args.model, &args.data)?;
    let mut inputs: Vec<(String, Vec<f32>)> = Vec::new();
    let class_names = data::class_names(&args.data);
    if args.test_index.is_empty() {
        for path in &args.images {
            let pixels = load_png_as_input(path)?;
            inputs.push((path.display().to_string(), model_input(pixels, r.normalize)));
        }
    } else {
        let data = data::load(&args.data, &[Split::Test])?;
        for &i in &args.test_index {
            let Some((img, label)) = data.test.get(i) else {
                bail!(
                    "--test-index {i} is out of range: the test set has {} items",
                    data.test.len()
                );
            };
            let name = format!(
                "test item {i} (true class: {})",
                class_names.get(label as usize).map_or("?", String::as_str)
            );
            let pixels = img.iter().map(|&b| b as f32 / 255.0);
            inputs.push((name, model_input(pixels, r.normalize)));
        }
    }
    let n = inputs.len();
    let flat: Vec<f32> = inputs.iter().flat_map(|(_, x)| x.iter().copied()).collect();
    let probs = probabilities(
        &r.model,
        &r.device,
        Tensor::from_vec(&[n, 1, SIDE, SIDE], flat)?,
    )?;
    let k = probs.dims()[1];
    let mut all = Vec::with_capacity(n);
    for (row, (name, _)) in probs.data().chunks(k).zip(&inputs) {
        let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(3);
        println!("{name}:");
        for (c, p) in &ranked {
            let cname = class_names.get(*c).map_or("?", String::as_str);
            println!("  {cname:<14} {:>6.2}%", p * 100.0);
        }
        all.push(ranked);
    }
    Ok(all)
}
