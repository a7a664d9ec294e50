//! The crate's error type: every failure names the file (or URL) involved and says what was
//! expected and what was found.

use std::fmt;
use std::path::PathBuf;

use crate::idx::ElementType;

/// Result alias used throughout the crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, verifying, fetching or batching a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// An I/O error on a named file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file starts with the gzip magic bytes but does not decompress.
    #[error("{}: gzip stream is corrupt or truncated: {source}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The first four bytes are not an IDX magic number.
    #[error(
        "{}: byte offset 0: bad IDX magic {found:02x?}, expected [00, 00, type, ndims] \
         with type one of 08 09 0b 0c 0d 0e and ndims >= 1",
        path.display()
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The file ends inside the header.
    #[error(
        "{}: truncated IDX header: expected {expected} header bytes, found {found} (file ends at byte offset {found})",
        path.display()
    )]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Header length implied by the magic number.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The header's sizes multiply past what any file can hold.
    #[error("{}: byte offset 4: IDX dimensions {dims:?} overflow a 64-bit byte count", path.display())]
    SizeOverflow {
        /// The file.
        path: PathBuf,
        /// The dimensions as declared.
        dims: Vec<u32>,
    },
    /// The data section is shorter than the header declares.
    #[error(
        "{}: truncated IDX data: header declares {expected} bytes in total, found {found}",
        path.display()
    )]
    TruncatedData {
        /// The file.
        path: PathBuf,
        /// Total file length implied by the header.
        expected: u64,
        /// Bytes present (at least; reading stops one byte past the expected length).
        found: u64,
    },
    /// Bytes follow the data section.
    #[error(
        "{}: trailing bytes after IDX data: header declares {expected} bytes in total, found more",
        path.display()
    )]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Total file length implied by the header.
        expected: u64,
    },
    /// The element type is not the one a dataset needs.
    #[error("{}: IDX element type: expected {expected}, found {found}", path.display())]
    WrongElementType {
        /// The file.
        path: PathBuf,
        /// The type needed.
        expected: ElementType,
        /// The type in the file.
        found: ElementType,
    },
    /// The dimensions are not the ones a dataset needs.
    #[error("{}: IDX dimensions: expected {expected}, found {found:?}", path.display())]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// A description of the dimensions needed.
        expected: String,
        /// The dimensions in the file.
        found: Vec<usize>,
    },
    /// Image and label files disagree on the number of items.
    #[error(
        "item counts differ: {} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Items in the image file.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Items in the label file.
        labels: usize,
    },
    /// A label is not below the class count.
    #[error(
        "{}: label {label} at item {index} is out of range: expected below {num_classes}",
        path.display()
    )]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Index of the offending item.
        index: usize,
        /// The label found.
        label: u8,
        /// Number of classes.
        num_classes: usize,
    },
    /// The decompressed content does not hash to the published value.
    #[error(
        "{}: {algorithm} checksum mismatch: expected {expected}, found {found}",
        path.display()
    )]
    ChecksumMismatch {
        /// The file (or the URL it came from).
        path: PathBuf,
        /// `"MD5"` or `"SHA-256"`.
        algorithm: &'static str,
        /// The published hash.
        expected: String,
        /// The hash of what was read.
        found: String,
    },
    /// A directory lacks one of the files a dataset needs.
    #[error("{}: no file {name} (or {name}.gz)", dir.display())]
    MissingFile {
        /// The directory searched.
        dir: PathBuf,
        /// The file name looked for.
        name: String,
    },
    /// A download failed.
    #[error("{url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
        /// Whether the server answered at all (false: unreachable, so later files skip it).
        reached: bool,
    },
    /// No source could provide one or more files; lists every source tried for each.
    #[error("{0}")]
    Unavailable(Box<Unavailable>),
    /// A dataset name that is not known.
    #[error("unknown dataset {found:?}: expected one of {expected}")]
    UnknownDataset {
        /// The name given.
        found: String,
        /// The known names.
        expected: String,
    },
    /// A batch size of zero.
    #[error("batch size must be at least 1, found 0")]
    ZeroBatchSize,
    /// A batch or item index past the end.
    #[error("index {index} is out of range: expected below {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of batches or items.
        len: usize,
    },
    /// A loader setting that does not fit the data (a crop padding as large as the image, a
    /// normalisation std of zero, ...); raised when the loader is configured, before any work.
    #[error("{setting}: {reason}")]
    InvalidSetting {
        /// The setting (`augment`, `normalize`).
        setting: &'static str,
        /// What is wrong, with what was expected and what was found.
        reason: String,
    },
    /// The background batch thread stopped unexpectedly.
    #[error("the data loader's prefetch thread stopped unexpectedly")]
    PrefetchThread,
    /// Building a tensor failed.
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}

/// One source tried for one file, and why it did not provide a verified copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The source: a path or a URL.
    pub source: String,
    /// Why it failed.
    pub reason: String,
}

/// The report inside [`DatasetError::Unavailable`]: for each file that could not be obtained,
/// every source tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The dataset's name, e.g. `fashion-mnist`.
    pub dataset: String,
    /// The directory the files should end up in.
    pub data_dir: PathBuf,
    /// `(file name, attempts)` for each file that no source provided.
    pub files: Vec<(String, Vec<Attempt>)>,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "could not obtain a verified copy of {}:", self.dataset)?;
        for (file, attempts) in &self.files {
            writeln!(f, "  {file}:")?;
            if attempts.is_empty() {
                writeln!(f, "    (no sources configured)")?;
            }
            for a in attempts {
                writeln!(f, "    {}: {}", a.source, a.reason)?;
            }
        }
        write!(f, "{}", self.hint)
    }
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
