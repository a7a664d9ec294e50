//! MNIST (LeCun, Cortes, Burges): 70,000 28x28 grayscale handwritten digits.

use crate::checksum::Checksum;
use crate::dataset::{Dataset, Split};
use crate::error::Result;
use crate::fetch::FetchOptions;
use crate::spec::{DatasetSpec, FileSpec};

/// MNIST: names, checksums and sources, plus a loader.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mnist;

impl Mnist {
    /// The ten class names, indexed by label.
    pub const CLASS_NAMES: [&'static str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// Everything needed to fetch and verify MNIST.
    ///
    /// The decompressed-content MD5s are the ones several public loaders list for the
    /// uncompressed files (47,040,016 / 60,008 / 7,840,016 / 10,008 bytes); no SHA-256 is
    /// published for them, so MNIST is verified by MD5 plus the structural checks every load
    /// does. The `.gz` MD5s are torchvision's, for the official archives.
    pub const SPEC: DatasetSpec = DatasetSpec {
        name: "mnist",
        class_names: &Self::CLASS_NAMES,
        files: [
            FileSpec {
                name: "train-images-idx3-ubyte",
                checksum: Checksum {
                    md5: "6bbc9ace898e44ae57da46a324031adb",
                    sha256: None,
                },
                official_gz_md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            },
            FileSpec {
                name: "train-labels-idx1-ubyte",
                checksum: Checksum {
                    md5: "a25bea736e30d166cdddb491f175f624",
                    sha256: None,
                },
                official_gz_md5: "d53e105ee54ea40749a09fcbcd1e9432",
            },
            FileSpec {
                name: "t10k-images-idx3-ubyte",
                checksum: Checksum {
                    md5: "2646ac647ad5339dbf082846283269ea",
                    sha256: None,
                },
                official_gz_md5: "9fb629c4189551a2d022fa330f9573f3",
            },
            FileSpec {
                name: "t10k-labels-idx1-ubyte",
                checksum: Checksum {
                    md5: "27ae3e4e09519cfbb04c329615203637",
                    sha256: None,
                },
                official_gz_md5: "ec29112dd5afa0611ce80d1b7f02629c",
            },
        ],
        lens: [60_000, 10_000],
        system_dirs: &[],
        system_package: None,
        mirrors: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist",
            "https://storage.googleapis.com/cvdf-datasets/mnist",
        ],
    };

    /// Obtains (see [`crate::fetch::fetch`]), verifies and loads one split.
    pub fn load(opts: &FetchOptions, split: Split) -> Result<Dataset> {
        Self::SPEC.load(opts, split)
    }
}
