//! `lenet eval`: test accuracy, per-class accuracy and the confusion matrix of a checkpoint.

use crate::cli::EvalArgs;
use crate::data;
use crate::inference::predictions;
use crate::plot::draw_confusion;
use crate::restore::restore;
use datasets::Split;
use std::sync::Arc;

/// Runs `lenet eval`; returns the test accuracy.
pub fn run(args: EvalArgs) -> anyhow::Result<f64> {
    let r = restore(&args.checkpoint, args.model, &args.data)?;
    let data = data::load(&args.data, &[Split::Test])?;
    let test = Arc::new(data.test);
    let preds = predictions(&r.model, &r.device, test.clone(), r.normalize)?;
    let k = data.class_names.len();
    let mut matrix = vec![vec![0u64; k]; k];
    for (i, &p) in preds.iter().enumerate() {
        let t = test.labels()[i] as usize;
        matrix[t][p.min(k - 1)] += 1;
    }
    let correct: u64 = (0..k).map(|c| matrix[c][c]).sum();
    let acc = correct as f64 / preds.len().max(1) as f64;
    println!("checkpoint {} on {}", r.path.display(), r.device.name());
    println!("test acc {acc:.4} ({correct} of {})", preds.len());
    println!();
    println!("{:<14} {:>8} {:>8}", "class", "acc", "count");
    for (c, name) in data.class_names.iter().enumerate() {
        let total: u64 = matrix[c].iter().sum();
        let a = matrix[c][c] as f64 / total.max(1) as f64;
        println!("{name:<14} {a:>8.3} {total:>8}");
    }
    println!();
    println!("confusion matrix (rows: true class, columns: predicted class)");
    print!("{:<14}", "");
    for c in 0..k {
        print!("{c:>6}");
    }
    println!();
    for (c, name) in data.class_names.iter().enumerate() {
        print!("{:<14}", format!("{c} {name}"));
        for v in &matrix[c] {
            print!("{v:>6}");
        }
        println!();
    }
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => r.path.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
    };
    std::fs::create_dir_all(&out_dir)?;
    let png = out_dir.join("confusion.png");
    let names: Vec<&str> = data.class_names.iter().map(String::as_str).collect();
    draw_confusion(&png, &matrix, &names)?;
    println!("wrote {}", png.display());
    Ok(acc)
}
