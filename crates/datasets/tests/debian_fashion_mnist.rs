//! The real Fashion-MNIST from Debian's `dataset-fashion-mnist` (CI installs it). Skips with a
//! printed reason when the package is absent.

use std::path::Path;

use datasets::checksum::{md5_hex, sha256_hex};
use datasets::idx::read_idx_bytes;
use datasets::{DataLoader, FashionMnist, FetchOptions, STANDARD_FILES, Source, Split, fetch};

const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

fn system_dir() -> Option<&'static Path> {
    let dir = Path::new(SYSTEM_DIR);
    if dir.join("train-images-idx3-ubyte.gz").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {SYSTEM_DIR} not present (install the Debian package dataset-fashion-mnist)"
        );
        None
    }
}

#[test]
fn debian_files_match_both_published_hashes() {
    let Some(dir) = system_dir() else { return };
    for (name, spec) in STANDARD_FILES.iter().zip(FashionMnist::SPEC.files) {
        assert_eq!(*name, spec.name);
        let bytes = read_idx_bytes(&dir.join(format!("{name}.gz"))).expect("reads");
        assert_eq!(md5_hex(&bytes), spec.checksum.md5, "{name}");
        assert_eq!(
            Some(sha256_hex(&bytes).as_str()),
            spec.checksum.sha256,
            "{name}"
        );
    }
}

#[test]
fn debian_fashion_mnist_counts_and_classes() {
    let Some(dir) = system_dir() else { return };
    let train = FashionMnist::SPEC
        .load_from_dir(dir, Split::Train)
        .expect("train");
    let test = FashionMnist::SPEC
        .load_from_dir(dir, Split::Test)
        .expect("test");
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!((train.rows(), train.cols()), (28, 28));
    assert_eq!(train.class_counts(), vec![6_000; 10]);
    assert_eq!(test.class_counts(), vec![1_000; 10]);
    assert_eq!(train.class_names()[9], "ankle boot");
    // The first test label of Fashion-MNIST is 9 (ankle boot), the second 2 (pullover).
    assert_eq!(&test.labels()[..2], &[9, 2]);

    let loader = DataLoader::new(test, 256).expect("loader").shuffle(0);
    assert_eq!(loader.len(), 40);
    let batch = loader.epoch(0).next().expect("one batch").expect("batch");
    assert_eq!(batch.images.shape().dims(), &[256, 1, 28, 28]);
}

#[test]
fn fetch_copies_from_the_system_dir_then_uses_the_cache() {
    let Some(_) = system_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("fashion-mnist");
    let opts = FetchOptions::new(&FashionMnist::SPEC, &data_dir).offline();
    let report = fetch(&FashionMnist::SPEC, &opts).expect("system dir");
    for f in &report.files {
        assert_eq!(
            f.source,
            Source::System(Path::new(SYSTEM_DIR).join(format!("{}.gz", f.name)))
        );
        assert!(f.path.starts_with(&data_dir));
    }
    let test = FashionMnist::load(&opts, Split::Test).expect("loads from the cache");
    assert_eq!(test.len(), 10_000);
    let report = fetch(&FashionMnist::SPEC, &opts).expect("cache");
    assert!(report.files.iter().all(|f| f.source == Source::Cache));
}
