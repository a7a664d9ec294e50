//! Descriptions of the published datasets: file names, checksums, class names and sources.

use std::path::{Path, PathBuf};

use crate::checksum::Checksum;
use crate::dataset::{Dataset, Split, find_file};
use crate::error::{DatasetError, Result};
use crate::fetch::{self, FetchOptions};
use crate::idx;

/// One file of a published dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpec {
    /// The standard file name without `.gz`, e.g. `train-images-idx3-ubyte`.
    pub name: &'static str,
    /// Published hashes of the decompressed content (what every source is verified against).
    pub checksum: Checksum,
    /// MD5 of the official `.gz` archive. Informational only: it identifies the official
    /// archive, but mirrors recompress, so it is never used to accept or reject a file.
    pub official_gz_md5: &'static str,
}

/// A published MNIST-style dataset: everything needed to find, fetch and verify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Short name, used for the cache directory and on the command line (`fashion-mnist`).
    pub name: &'static str,
    /// Class names, indexed by label.
    pub class_names: &'static [&'static str],
    /// The four files: train images, train labels, test images, test labels.
    pub files: [FileSpec; 4],
    /// Items in the training and test sets.
    pub lens: [usize; 2],
    /// System directories that may hold the files (e.g. from a Debian package).
    pub system_dirs: &'static [&'static str],
    /// The package that provides `system_dirs`, for error hints.
    pub system_package: Option<&'static str>,
    /// Base URLs of mirrors, tried in order; `<base>/<name>.gz` is fetched.
    pub mirrors: &'static [&'static str],
}

/// Every dataset this crate knows by name.
pub const KNOWN: [&DatasetSpec; 2] = [&crate::FashionMnist::SPEC, &crate::Mnist::SPEC];

impl DatasetSpec {
    /// The dataset called `name` (`fashion-mnist` or `mnist`).
    pub fn by_name(name: &str) -> Result<&'static DatasetSpec> {
        KNOWN
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| DatasetError::UnknownDataset {
                found: name.to_owned(),
                expected: KNOWN.map(|s| s.name).join(", "),
            })
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The spec of file `name` (without `.gz`), if it belongs to this dataset.
    pub fn file(&self, name: &str) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Number of items in `split`.
    pub fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.lens[0],
            Split::Test => self.lens[1],
        }
    }

    /// Whether the dataset has no items (never, for published datasets).
    pub fn is_empty(&self) -> bool {
        self.lens == [0, 0]
    }

    /// Obtains and verifies the two files of `split` from the sources in `opts` (see
    /// [`fetch::fetch`]), then loads them.
    pub fn load(&self, opts: &FetchOptions, split: Split) -> Result<Dataset> {
        let names = [split.images_file(), split.labels_file()];
        let (report, mut contents) = fetch::fetch_contents(self, opts, &names)?;
        let labels = contents.pop().unwrap_or_default();
        let images = contents.pop().unwrap_or_default();
        let ds = Dataset::from_idx_bytes(
            images,
            &report.files[0].path,
            labels,
            &report.files[1].path,
            self.num_classes(),
        )?;
        Ok(ds.with_class_names(self.class_names))
    }

    /// Loads `split` from `dir` alone (files named as published, `.gz` or not), verifying both
    /// files' checksums. Nothing is fetched or copied.
    pub fn load_from_dir(&self, dir: &Path, split: Split) -> Result<Dataset> {
        let read = |name: &str| -> Result<(PathBuf, Vec<u8>)> {
            let path = find_file(dir, name).ok_or_else(|| DatasetError::MissingFile {
                dir: dir.into(),
                name: name.into(),
            })?;
            let bytes = idx::read_idx_bytes(&path)?;
            if let Some(spec) = self.file(name) {
                spec.checksum.verify(&bytes, &path)?;
            }
            Ok((path, bytes))
        };
        // The two files decompress and hash independently: do them side by side.
        let (images, labels) = std::thread::scope(|s| {
            let labels = s.spawn(|| read(split.labels_file()));
            (read(split.images_file()), labels.join())
        });
        let (ip, ib) = images?;
        let (lp, lb) = labels.map_err(|_| DatasetError::PrefetchThread)??;
        Ok(
            Dataset::from_idx_bytes(ib, &ip, lb, &lp, self.num_classes())?
                .with_class_names(self.class_names),
        )
    }
}
