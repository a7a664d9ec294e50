//! Fashion-MNIST (Zalando Research): 70,000 28x28 grayscale images of clothing in ten classes.

use crate::checksum::Checksum;
use crate::dataset::{Dataset, Split};
use crate::error::Result;
use crate::fetch::FetchOptions;
use crate::spec::{DatasetSpec, FileSpec};

/// Fashion-MNIST: names, checksums and sources, plus a loader.
#[derive(Debug, Clone, Copy, Default)]
pub struct FashionMnist;

impl FashionMnist {
    /// The ten class names, indexed by label (as in d2l.ai and the official README).
    pub const CLASS_NAMES: [&'static str; 10] = [
        "t-shirt",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ];

    /// Everything needed to fetch and verify Fashion-MNIST. The MD5s of the decompressed files
    /// are the ones public loaders publish; both MD5 and SHA-256 were checked on Debian's copy.
    pub const SPEC: DatasetSpec = DatasetSpec {
        name: "fashion-mnist",
        class_names: &Self::CLASS_NAMES,
        files: [
            FileSpec {
                name: "train-images-idx3-ubyte",
                checksum: Checksum {
                    md5: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                    sha256: Some(
                        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                    ),
                },
                official_gz_md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            },
            FileSpec {
                name: "train-labels-idx1-ubyte",
                checksum: Checksum {
                    md5: "9018921c3c673c538a1fc5bad174d6f9",
                    sha256: Some(
                        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                    ),
                },
                official_gz_md5: "25c81989df183df01b3e8a0aad5dffbe",
            },
            FileSpec {
                name: "t10k-images-idx3-ubyte",
                checksum: Checksum {
                    md5: "8181f5470baa50b63fa0f6fddb340f0a",
                    sha256: Some(
                        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                    ),
                },
                official_gz_md5: "bef4ecab320f06d8554ea6380940ec79",
            },
            FileSpec {
                name: "t10k-labels-idx1-ubyte",
                checksum: Checksum {
                    md5: "15d484375f8d13e6eb1aabb0c3f46965",
                    sha256: Some(
                        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                    ),
                },
                official_gz_md5: "bb300cfdad3c16e7a12a480ee83cd310",
            },
        ],
        lens: [60_000, 10_000],
        system_dirs: &["/usr/share/datasets/fashion-mnist"],
        system_package: Some("dataset-fashion-mnist"),
        // HTTPS first; the official site serves plain HTTP only (content is verified either way).
        mirrors: &[
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        ],
    };

    /// Obtains (see [`crate::fetch::fetch`]), verifies and loads one split.
    pub fn load(opts: &FetchOptions, split: Split) -> Result<Dataset> {
        Self::SPEC.load(opts, split)
    }
}
