//! IDX files on disk: every element type, gz and raw, and every kind of corruption.

use std::path::Path;

use datasets::idx::{parse_idx, read_idx_bytes};
use datasets::{Dataset, DatasetError, ElementType, IdxArray, IdxData, Split, read_idx};
use fovea_test_support::idx::{gz, images_idx, labels_idx, write};

fn every_type() -> Vec<IdxArray> {
    let dims = vec![2, 3, 4];
    let n: usize = 24;
    [
        IdxData::U8((0..n).map(|i| (i * 11) as u8).collect()),
        IdxData::I8((0..n).map(|i| (i as i8 - 12) * 10).collect()),
        IdxData::I16((0..n).map(|i| (i as i16 - 12) * 2000).collect()),
        IdxData::I32((0..n).map(|i| (i as i32 - 12) * 100_000_000).collect()),
        IdxData::F32((0..n).map(|i| (i as f32 - 12.0) * 0.37e10).collect()),
        IdxData::F64((0..n).map(|i| (i as f64 - 12.0) * -1.25e-200).collect()),
    ]
    .into_iter()
    .map(|d| IdxArray::new(dims.clone(), d).expect("valid"))
    .collect()
}

#[test]
fn every_element_type_gz_and_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    for arr in every_type() {
        let ty = arr.element_type();
        let raw = arr.to_bytes();
        let raw_path = write(dir.path(), &format!("{ty:?}.idx"), &raw);
        // The name says nothing: gzip is detected by magic bytes.
        let gz_path = write(dir.path(), &format!("{ty:?}-compressed.idx"), &gz(&raw));
        for path in [&raw_path, &gz_path] {
            let back = read_idx(path).unwrap_or_else(|e| panic!("{ty}: {e}"));
            assert_eq!(back, arr, "{}", path.display());
            assert_eq!(back.dims(), &[2, 3, 4]);
            assert_eq!(read_idx_bytes(path).expect("bytes"), raw);
        }
    }
    assert_eq!(ElementType::ALL.len(), 6);
}

#[test]
fn known_byte_layout() {
    // Hand-written: i16 [2] = [-2, 258], big-endian.
    let bytes = [0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x02];
    let arr = parse_idx(&bytes, Path::new("hand")).expect("parses");
    assert_eq!(arr.data(), &IdxData::I16(vec![-2, 258]));
}

fn read_err(bytes: &[u8]) -> (DatasetError, DatasetError) {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = write(dir.path(), "f", bytes);
    let gzp = write(dir.path(), "f.gz", &gz(bytes));
    let a = read_idx(&raw).expect_err("raw must fail");
    let b = read_idx(&gzp).expect_err("gz must fail");
    (a, b)
}

#[test]
fn bad_magic() {
    for bytes in [
        &[1u8, 0, 8, 1, 0, 0, 0, 0][..],
        &[0, 0, 0x0A, 1, 0, 0, 0, 0],
        &[0, 0, 8, 0, 0, 0, 0, 0],
    ] {
        let (a, b) = read_err(bytes);
        for e in [a, b] {
            assert!(matches!(e, DatasetError::BadMagic { .. }), "{e}");
            assert!(e.to_string().contains("byte offset 0"), "{e}");
        }
    }
}

#[test]
fn truncated_header() {
    let (a, b) = read_err(&[0, 0, 8]);
    for e in [a, b] {
        assert!(
            matches!(
                e,
                DatasetError::TruncatedHeader {
                    expected: 4,
                    found: 3,
                    ..
                }
            ),
            "{e}"
        );
    }
    let (a, b) = read_err(&[0, 0, 8, 3, 0, 0, 0, 9, 0, 0]);
    for e in [a, b] {
        assert!(
            matches!(
                e,
                DatasetError::TruncatedHeader {
                    expected: 16,
                    found: 10,
                    ..
                }
            ),
            "{e}"
        );
    }
    let (a, _) = read_err(&[]);
    assert!(
        matches!(
            a,
            DatasetError::TruncatedHeader {
                expected: 4,
                found: 0,
                ..
            }
        ),
        "{a}"
    );
}

#[test]
fn truncated_data_names_file_and_counts() {
    let mut bytes = images_idx(4, 0); // 16 + 24 bytes
    bytes.truncate(30);
    let (a, b) = read_err(&bytes);
    for e in [a, b] {
        assert!(
            matches!(
                e,
                DatasetError::TruncatedData {
                    expected: 40,
                    found: 30,
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("40") && msg.contains("30") && msg.contains("/f"),
            "{msg}"
        );
    }
}

#[test]
fn trailing_data() {
    let mut bytes = labels_idx(3, 2);
    bytes.push(0);
    let (a, b) = read_err(&bytes);
    for e in [a, b] {
        assert!(
            matches!(e, DatasetError::TrailingData { expected: 11, .. }),
            "{e}"
        );
    }
}

#[test]
fn hostile_sizes_do_not_allocate() {
    // 2^32 - 1 items of 2^32 - 1 f64s: overflows 64 bits.
    let (a, b) = read_err(&[
        0, 0, 0x0E, 2, 255, 255, 255, 255, 255, 255, 255, 255, 1, 2, 3,
    ]);
    for e in [a, b] {
        assert!(matches!(e, DatasetError::SizeOverflow { .. }), "{e}");
    }
    // ~2^32 items of u8 x 2^32-1 x 255: 2^72 bytes would overflow too; claim exactly 2^32-1
    // labels (4 GiB) with 5 bytes present: must fail fast as truncated, without a 4 GiB buffer.
    let (a, b) = read_err(&[0, 0, 8, 1, 255, 255, 255, 255, 1, 2, 3, 4, 5]);
    for e in [a, b] {
        assert!(
            matches!(
                e,
                DatasetError::TruncatedData {
                    expected: 4_294_967_303,
                    found: 13,
                    ..
                }
            ),
            "{e}"
        );
    }
    // 2^31 f64 items x 8 x 4 (2^36 bytes): valid arithmetic, still only the data present is read.
    let (a, _) = read_err(&[0, 0, 0x0E, 2, 128, 0, 0, 0, 0, 0, 0, 4, 9, 9]);
    assert!(
        matches!(a, DatasetError::TruncatedData { found: 14, .. }),
        "{a}"
    );
}

#[test]
fn gzip_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    // gzip magic, then nonsense.
    let p = write(
        dir.path(),
        "junk.gz",
        &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    );
    let e = read_idx(&p).expect_err("garbage");
    assert!(matches!(e, DatasetError::Gzip { .. }), "{e}");
    assert!(e.to_string().contains("junk.gz"), "{e}");
    // A valid gzip stream cut in half.
    let full = gz(&images_idx(50, 3));
    let p = write(dir.path(), "cut.gz", &full[..full.len() / 2]);
    let e = read_idx(&p).expect_err("cut");
    assert!(
        matches!(
            e,
            DatasetError::Gzip { .. } | DatasetError::TruncatedData { .. }
        ),
        "{e}"
    );
    // Corrupted CRC trailer.
    let mut bad = gz(&labels_idx(10, 3));
    let n = bad.len();
    bad[n - 8] ^= 0xFF;
    let p = write(dir.path(), "crc.gz", &bad);
    let e = read_idx(&p).expect_err("crc");
    assert!(matches!(e, DatasetError::Gzip { .. }), "{e}");
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let e = read_idx(Path::new("/nonexistent/fovea/x.idx")).expect_err("missing");
    assert!(matches!(e, DatasetError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/fovea/x.idx"));
}

#[test]
fn custom_idx_directory_gz_and_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "train-images-idx3-ubyte.gz",
        &gz(&images_idx(12, 0)),
    );
    write(dir.path(), "train-labels-idx1-ubyte", &labels_idx(12, 4));
    write(dir.path(), "t10k-images-idx3-ubyte", &images_idx(5, 1));
    write(
        dir.path(),
        "t10k-labels-idx1-ubyte.gz",
        &gz(&labels_idx(5, 4)),
    );
    let train = Dataset::from_idx_dir(dir.path(), Split::Train, 4).expect("train");
    assert_eq!((train.len(), train.rows(), train.cols()), (12, 3, 2));
    assert_eq!(train.class_counts(), vec![3, 3, 3, 3]);
    assert_eq!(train.image(1).expect("item"), &[42, 49, 56, 63, 70, 77]);
    let test = Dataset::from_idx_dir(dir.path(), Split::Test, 4).expect("test");
    assert_eq!(test.len(), 5);
    // Labels must be below the class count.
    let e = Dataset::from_idx_dir(dir.path(), Split::Train, 3).expect_err("label 3 with 3 classes");
    assert!(
        matches!(
            e,
            DatasetError::LabelOutOfRange {
                index: 3,
                label: 3,
                num_classes: 3,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn custom_directory_structural_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Count mismatch.
    write(dir.path(), "train-images-idx3-ubyte", &images_idx(12, 0));
    write(dir.path(), "train-labels-idx1-ubyte", &labels_idx(11, 4));
    let e = Dataset::from_idx_dir(dir.path(), Split::Train, 4).expect_err("counts");
    assert!(
        matches!(
            e,
            DatasetError::CountMismatch {
                images: 12,
                labels: 11,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("train-labels-idx1-ubyte"), "{e}");
    // Wrong element type.
    let f32_images = IdxArray::new(vec![12, 3, 2], IdxData::F32(vec![0.0; 72])).expect("valid");
    write(
        dir.path(),
        "train-images-idx3-ubyte",
        &f32_images.to_bytes(),
    );
    write(dir.path(), "train-labels-idx1-ubyte", &labels_idx(12, 4));
    let e = Dataset::from_idx_dir(dir.path(), Split::Train, 4).expect_err("type");
    assert!(
        matches!(
            e,
            DatasetError::WrongElementType {
                expected: ElementType::U8,
                found: ElementType::F32,
                ..
            }
        ),
        "{e}"
    );
    // Images not [n, rows, cols].
    let flat = IdxArray::new(vec![12, 6], IdxData::U8(vec![0; 72])).expect("valid");
    write(dir.path(), "train-images-idx3-ubyte", &flat.to_bytes());
    let e = Dataset::from_idx_dir(dir.path(), Split::Train, 4).expect_err("shape");
    assert!(matches!(e, DatasetError::WrongShape { .. }), "{e}");
    // Missing test files.
    let e = Dataset::from_idx_dir(dir.path(), Split::Test, 4).expect_err("missing");
    assert!(matches!(e, DatasetError::MissingFile { .. }), "{e}");
}
