//! An in-memory image-classification dataset (u8 images, u8 labels), and loading one from any
//! directory holding the four standard MNIST-style IDX files.

use std::path::{Path, PathBuf};

use crate::error::{DatasetError, Result};
use crate::idx::{self, IdxHeader};

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training set (`train-*` files).
    Train,
    /// The test set (`t10k-*` files).
    Test,
}

impl Split {
    /// The standard image file name, without `.gz`.
    pub fn images_file(self) -> &'static str {
        match self {
            Self::Train => "train-images-idx3-ubyte",
            Self::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// The standard label file name, without `.gz`.
    pub fn labels_file(self) -> &'static str {
        match self {
            Self::Train => "train-labels-idx1-ubyte",
            Self::Test => "t10k-labels-idx1-ubyte",
        }
    }
}

/// The four standard file names, without `.gz`, in the order train images, train labels,
/// test images, test labels.
pub const STANDARD_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds `name.gz` or `name` (in that order) in `dir`.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.gz"), name.to_owned()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// A labelled image dataset held in memory as bytes: images row-major, one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    num_classes: usize,
    class_names: Vec<String>,
}

impl Dataset {
    /// A dataset from raw parts: `images` holds `labels.len()` images of `rows * cols` bytes.
    /// Every label must be below `num_classes`. Class names default to `"0"`, `"1"`, ...
    pub fn from_parts(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        num_classes: usize,
    ) -> Result<Self> {
        let memory = Path::new("<memory>");
        let expected = rows
            .checked_mul(cols)
            .and_then(|s| s.checked_mul(labels.len()));
        if expected != Some(images.len()) {
            return Err(DatasetError::WrongShape {
                path: memory.into(),
                expected: format!("{} images of {rows}x{cols} bytes", labels.len()),
                found: vec![images.len()],
            });
        }
        check_labels(&labels, num_classes, memory)?;
        Ok(Self {
            images,
            labels,
            rows,
            cols,
            num_classes,
            class_names: (0..num_classes).map(|c| c.to_string()).collect(),
        })
    }

    /// A dataset from the decompressed bytes of an image file and a label file, checked
    /// structurally: element type u8, images `[n, rows, cols]`, labels `[n]`, equal counts,
    /// labels below `num_classes`. The paths only name the files in errors.
    pub fn from_idx_bytes(
        images: Vec<u8>,
        images_path: &Path,
        labels: Vec<u8>,
        labels_path: &Path,
        num_classes: usize,
    ) -> Result<Self> {
        let (ih, images) = idx::parse_idx_u8(images, images_path)?;
        let (lh, labels) = idx::parse_idx_u8(labels, labels_path)?;
        let [n_images, rows, cols] = dims3(&ih, images_path)?;
        if lh.dims.len() != 1 {
            return Err(DatasetError::WrongShape {
                path: labels_path.into(),
                expected: "[items]".into(),
                found: lh.dims,
            });
        }
        if n_images != lh.dims[0] {
            return Err(DatasetError::CountMismatch {
                images_path: images_path.into(),
                images: n_images,
                labels_path: labels_path.into(),
                labels: lh.dims[0],
            });
        }
        check_labels(&labels, num_classes, labels_path)?;
        Ok(Self {
            images,
            labels,
            rows,
            cols,
            num_classes,
            class_names: (0..num_classes).map(|c| c.to_string()).collect(),
        })
    }

    /// Loads an image file and a label file (each gzip-compressed or raw), checked as in
    /// [`Dataset::from_idx_bytes`].
    pub fn from_idx_files(
        images_path: &Path,
        labels_path: &Path,
        num_classes: usize,
    ) -> Result<Self> {
        let images = idx::read_idx_bytes(images_path)?;
        let labels = idx::read_idx_bytes(labels_path)?;
        Self::from_idx_bytes(images, images_path, labels, labels_path, num_classes)
    }

    /// Loads one split of a custom MNIST-style dataset: any directory holding the standard file
    /// names (`train-images-idx3-ubyte[.gz]` and so on), as KMNIST and similar sets ship.
    /// No checksums; checked structurally as in [`Dataset::from_idx_bytes`].
    pub fn from_idx_dir(dir: &Path, split: Split, num_classes: usize) -> Result<Self> {
        let find = |name: &str| {
            find_file(dir, name).ok_or_else(|| DatasetError::MissingFile {
                dir: dir.into(),
                name: name.into(),
            })
        };
        let images = find(split.images_file())?;
        let labels = find(split.labels_file())?;
        Self::from_idx_files(&images, &labels, num_classes)
    }

    /// Replaces the class names (as many as there are classes; extra names are ignored and
    /// missing ones keep their numeric default).
    pub fn with_class_names<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        for (slot, name) in self.class_names.iter_mut().zip(names) {
            *slot = name.as_ref().to_owned();
        }
        self
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height in pixels.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width in pixels.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes per image (`rows * cols`).
    pub fn image_size(&self) -> usize {
        self.rows * self.cols
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// All images, concatenated.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Image `i` (row-major bytes), if in range.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let size = self.image_size();
        self.images
            .get(i.checked_mul(size)?..(i + 1).checked_mul(size)?)
    }

    /// Label `i`, if in range.
    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels.get(i).copied()
    }

    /// Item `i` as `(image bytes, label)`, if in range.
    pub fn get(&self, i: usize) -> Option<(&[u8], u8)> {
        Some((self.image(i)?, self.label(i)?))
    }

    /// Number of items per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }
}

fn dims3(h: &IdxHeader, path: &Path) -> Result<[usize; 3]> {
    match h.dims[..] {
        [n, r, c] => Ok([n, r, c]),
        _ => Err(DatasetError::WrongShape {
            path: path.into(),
            expected: "[items, rows, cols]".into(),
            found: h.dims.clone(),
        }),
    }
}

fn check_labels(labels: &[u8], num_classes: usize, path: &Path) -> Result<()> {
    match labels.iter().position(|&l| usize::from(l) >= num_classes) {
        Some(index) => Err(DatasetError::LabelOutOfRange {
            path: path.into(),
            index,
            label: labels[index],
            num_classes,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_parts_checks_sizes_and_labels() {
        let ds = Dataset::from_parts(vec![0; 8], vec![0, 1], 2, 2, 2).expect("valid");
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.get(1), Some((&[0u8; 4][..], 1)));
        assert_eq!(ds.get(2), None);
        assert_eq!(ds.class_counts(), vec![1, 1]);
        assert!(Dataset::from_parts(vec![0; 7], vec![0, 1], 2, 2, 2).is_err());
        assert!(matches!(
            Dataset::from_parts(vec![0; 8], vec![0, 2], 2, 2, 2),
            Err(DatasetError::LabelOutOfRange {
                index: 1,
                label: 2,
                ..
            })
        ));
    }

    #[test]
    fn class_names_replace_defaults() {
        let ds = Dataset::from_parts(vec![0; 4], vec![0], 2, 2, 3)
            .expect("valid")
            .with_class_names(&["a", "b"]);
        assert_eq!(ds.class_names(), ["a", "b", "2"]);
    }
}
