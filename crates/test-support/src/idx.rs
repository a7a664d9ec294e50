//! Synthetic IDX files and a fake dataset spec whose checksums are those of the files (the
//! fixtures of the `datasets` tests).

use std::io::Write;
use std::path::{Path, PathBuf};

use datasets::checksum::{md5_hex, sha256_hex};
use datasets::{Checksum, DatasetSpec, FileSpec, IdxArray, IdxData, STANDARD_FILES};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Gzip-compresses `bytes`.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).expect("gzip to memory");
    e.finish().expect("gzip to memory")
}

/// Writes `bytes` to `dir/name`, returning the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write file");
    p
}

/// IDX bytes of `n` images of 3x2 pixels (pixel = item*7 + k, wrapping) with `seed` mixed in.
pub fn images_idx(n: usize, seed: u8) -> Vec<u8> {
    let data = (0..n * 6)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    IdxArray::new(vec![n, 3, 2], IdxData::U8(data))
        .expect("valid")
        .to_bytes()
}

/// IDX bytes of `n` labels `(i + shift) % classes`.
pub fn labels_idx_shifted(n: usize, classes: u8, shift: usize) -> Vec<u8> {
    let data = (0..n)
        .map(|i| ((i + shift) % usize::from(classes)) as u8)
        .collect();
    IdxArray::new(vec![n], IdxData::U8(data))
        .expect("valid")
        .to_bytes()
}

/// IDX bytes of `n` labels `i % classes`.
pub fn labels_idx(n: usize, classes: u8) -> Vec<u8> {
    labels_idx_shifted(n, classes, 0)
}

/// The four files of a small synthetic dataset (train 12 items, test 5), uncompressed, in
/// `STANDARD_FILES` order.
pub fn synthetic_files(seed: u8) -> [Vec<u8>; 4] {
    let shift = usize::from(seed);
    [
        images_idx(12, seed),
        labels_idx_shifted(12, 4, shift),
        images_idx(5, seed.wrapping_add(1)),
        labels_idx_shifted(5, 4, shift + 1),
    ]
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A dataset spec whose checksums are those of `files` and whose sources are as given.
pub fn spec_for(
    files: &[Vec<u8>; 4],
    mirrors: Vec<String>,
    system_dirs: Vec<PathBuf>,
) -> &'static DatasetSpec {
    let fs: [FileSpec; 4] = std::array::from_fn(|i| FileSpec {
        name: STANDARD_FILES[i],
        checksum: Checksum {
            md5: leak(md5_hex(&files[i])),
            sha256: Some(leak(sha256_hex(&files[i]))),
        },
        official_gz_md5: "",
    });
    let mirrors: Vec<&'static str> = mirrors.into_iter().map(leak).collect();
    let dirs: Vec<&'static str> = system_dirs
        .into_iter()
        .map(|d| leak(d.display().to_string()))
        .collect();
    Box::leak(Box::new(DatasetSpec {
        name: "synthetic",
        class_names: &["a", "b", "c", "d"],
        files: fs,
        lens: [12, 5],
        system_dirs: Box::leak(dirs.into_boxed_slice()),
        system_package: None,
        mirrors: Box::leak(mirrors.into_boxed_slice()),
    }))
}
