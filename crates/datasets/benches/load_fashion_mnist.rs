//! Load + decode + verify the 60,000-image Fashion-MNIST training set from its gz files, when
//! Debian's `dataset-fashion-mnist` (or `$FOVEA_DATA/fashion-mnist`) provides them.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use datasets::{DataLoader, FashionMnist, Split};

fn source_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = FashionMnist::SPEC
        .system_dirs
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(root) = std::env::var_os("FOVEA_DATA") {
        dirs.insert(0, PathBuf::from(root).join(FashionMnist::SPEC.name));
    }
    dirs.into_iter()
        .find(|d| d.join("train-images-idx3-ubyte.gz").is_file())
}

fn bench(c: &mut Criterion) {
    let Some(dir) = source_dir() else {
        eprintln!(
            "skipping load_fashion_mnist: no Fashion-MNIST gz files (install dataset-fashion-mnist)"
        );
        return;
    };
    let mut group = c.benchmark_group("fashion_mnist");
    group.sample_size(10);
    group.bench_function("load_train_gz_verified", |b| {
        b.iter(|| {
            FashionMnist::SPEC
                .load_from_dir(&dir, Split::Train)
                .expect("loads")
        })
    });
    let train = FashionMnist::SPEC
        .load_from_dir(&dir, Split::Train)
        .expect("loads");
    let loader = DataLoader::new(train, 256).expect("loader").shuffle(0);
    group.bench_function("epoch_batches_256", |b| {
        b.iter(|| {
            loader
                .epoch(0)
                .map(|r| r.expect("batch").len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
