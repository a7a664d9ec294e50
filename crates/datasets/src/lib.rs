//! Datasets for Fovea: the IDX file format, Fashion-MNIST and MNIST fetched from every reachable
//! source and verified by checksum, custom MNIST-style directories, and a shuffling
//! [`DataLoader`] that turns u8 images into f32 batches on a background thread, with seeded
//! training-time augmentation ([`Augment`]: random crop and flip) and input normalisation
//! ([`Normalize`]).
//!
//! ```
//! use datasets::{DataLoader, Dataset, FashionMnist, FetchOptions, Split};
//!
//! // Fashion-MNIST from the cache directory, Debian's `dataset-fashion-mnist`, or a mirror
//! // (offline here: no mirrors), every file verified by checksum.
//! # let tmp = tempfile::tempdir()?;
//! # let data_dir = tmp.path().join("fashion-mnist");
//! let opts = FetchOptions::new(&FashionMnist::SPEC, data_dir).offline();
//! let data = match FashionMnist::load(&opts, Split::Test) {
//!     Ok(test) => test,
//!     // Not installed: a tiny in-memory dataset instead, three 2x2 images.
//!     Err(_) => Dataset::from_parts(vec![0, 255, 0, 255, 1, 2, 3, 4, 9, 9, 9, 9], vec![1, 0, 1], 2, 2, 10)?,
//! };
//! let loader = DataLoader::new(data, 256)?.shuffle(42).drop_last(false);
//! for batch in loader.epoch(0) {
//!     let batch = batch?; // images: [B, 1, rows, cols] f32 in 0..=1, labels: Vec<u32>
//!     assert_eq!(batch.images.shape().dims()[1], 1);
//!     assert!(batch.images.data().iter().all(|&x| (0.0..=1.0).contains(&x)));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod augment;
pub mod checksum;
pub mod dataset;
pub mod error;
pub mod fashion_mnist;
pub mod fetch;
pub mod idx;
pub mod loader;
pub mod mnist;
pub mod spec;

pub use augment::{Augment, Normalize};
pub use checksum::Checksum;
pub use dataset::{Dataset, STANDARD_FILES, Split};
pub use error::{Attempt, DatasetError, Result, Unavailable};
pub use fashion_mnist::FashionMnist;
pub use fetch::{FetchOptions, FetchReport, FetchedFile, Source, fetch, resolve_data_dir};
pub use idx::{ElementType, IdxArray, IdxData, read_idx};
pub use loader::{Batch, DataLoader, Epoch};
pub use mnist::Mnist;
pub use spec::{DatasetSpec, FileSpec};
