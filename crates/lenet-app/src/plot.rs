//! Charts written as PNG: training curves (as d2l's Animator draws them) and confusion matrices.

use crate::file_out::write_rgb_png;
use crate::font::{FAMILY, ensure_font};
use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One point of the training curves; `epoch` is fractional for points inside an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint {
    /// Position on the x axis, in epochs (e.g. 0.2 after a fifth of the first epoch).
    pub epoch: f64,
    /// Mean training loss so far in this epoch.
    pub train_loss: f64,
    /// Training accuracy so far in this epoch.
    pub train_acc: f64,
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// Draws train loss, train accuracy (fractional-epoch points) and test accuracy (one per epoch).
pub fn draw_curves(
    path: &Path,
    points: &[CurvePoint],
    test_acc: &[(f64, f64)],
    epochs: usize,
) -> anyhow::Result<()> {
    let text = ensure_font();
    let (width, height) = (720u32, 480u32);
    let mut buf = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let y_max = points
            .iter()
            .map(|p| p.train_loss)
            .fold(1.0f64, f64::max)
            .min(10.0);
        let mut builder = ChartBuilder::on(&root);
        builder.margin(16);
        if text {
            builder
                .caption("LeNet on Fashion-MNIST", (FAMILY, 22))
                .x_label_area_size(40)
                .y_label_area_size(48);
        }
        let mut chart = builder
            .build_cartesian_2d(0f64..epochs.max(1) as f64, 0f64..y_max * 1.05)
            .map_err(plot_err)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("loss / accuracy")
                .label_style((FAMILY, 14))
                .draw()
                .map_err(plot_err)?;
        }
        type Series = (&'static str, RGBColor, Vec<(f64, f64)>);
        let series: [Series; 3] = [
            (
                "train loss",
                BLUE,
                points.iter().map(|p| (p.epoch, p.train_loss)).collect(),
            ),
            (
                "train acc",
                MAGENTA,
                points.iter().map(|p| (p.epoch, p.train_acc)).collect(),
            ),
            ("test acc", GREEN, test_acc.to_vec()),
        ];
        for (label, color, data) in series {
            let drawn = chart
                .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
                .map_err(plot_err)?;
            if text {
                drawn.label(label).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
            chart
                .draw_series(
                    data.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )
                .map_err(plot_err)?;
        }
        if text {
            chart
                .configure_series_labels()
                .label_font((FAMILY, 14))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    write_rgb_png(path, width, height, &buf)
}

/// Draws a confusion matrix (rows: true class, columns: predicted) as a heat map, each cell
/// shaded by its share of the row and labelled with its count.
pub fn draw_confusion(
    path: &Path,
    matrix: &[Vec<u64>],
    class_names: &[&str],
) -> anyhow::Result<()> {
    let text = ensure_font();
    let k = matrix.len().max(1) as i32;
    let (left, top, bottom) = (110i32, 50i32, 110i32);
    let cell = ((760 - left - 20) / k).min((700 - top - bottom) / k);
    let (width, height) = (
        (left + k * cell + 20) as u32,
        (top + k * cell + bottom) as u32,
    );
    let mut buf = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        for (t, row) in matrix.iter().enumerate() {
            let total = row.iter().sum::<u64>().max(1) as f64;
            for (p, &count) in row.iter().enumerate() {
                let share = count as f64 / total;
                let shade = (255.0 * (1.0 - share)) as u8;
                let (x, y) = (left + p as i32 * cell, top + t as i32 * cell);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(shade, shade, 255).filled(),
                ))
                .map_err(plot_err)?;
                if text {
                    let color = if share > 0.5 { WHITE } else { BLACK };
                    let style = (FAMILY, 13)
                        .into_font()
                        .color(&color)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    root.draw(&Text::new(
                        count.to_string(),
                        (x + cell / 2, y + cell / 2),
                        style,
                    ))
                    .map_err(plot_err)?;
                }
            }
        }
        if text {
            root.draw(&Text::new(
                "confusion matrix (rows: true class, columns: predicted class)",
                (left, 18),
                (FAMILY, 16).into_font(),
            ))
            .map_err(plot_err)?;
            for (i, name) in class_names.iter().enumerate().take(k as usize) {
                let c = i as i32 * cell + cell / 2;
                let right = (FAMILY, 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center));
                root.draw(&Text::new(name.to_string(), (left - 6, top + c), right))
                    .map_err(plot_err)?;
                let rotated = (FAMILY, 12)
                    .into_font()
                    .transform(FontTransform::Rotate90)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center));
                root.draw(&Text::new(
                    name.to_string(),
                    (left + c, top + k * cell + 6),
                    rotated,
                ))
                .map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    write_rgb_png(path, width, height, &buf)
}
