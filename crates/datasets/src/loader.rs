//! Batching a [`Dataset`] into f32 tensors: seeded shuffle, `drop_last`, background prefetch,
//! training-time augmentation and input normalisation ([`crate::augment`]).
//!
//! The shuffle is a Fisher–Yates shuffle written here on ChaCha8 (`next_u64` with rejection
//! sampling), so the same seed gives the same order on every platform and every version of
//! `rand`. Epoch `e` uses ChaCha8 seeded with the loader's seed on stream `e`: any epoch's order
//! can be recomputed on its own (for resuming training).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use tensor::Tensor;

use crate::augment::{self, Augment, Normalize, byte_table};
use crate::dataset::Dataset;
use crate::error::{DatasetError, Result};

/// One batch: images as `[B, 1, rows, cols]` f32 in `0..=1` (byte / 255, then normalised when
/// the loader normalises), labels, and the dataset indices the items came from.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, 1, rows, cols]`, each pixel `byte as f32 / 255` (then `(x - mean) / std` when the
    /// loader normalises).
    pub images: Tensor,
    /// Class labels.
    pub labels: Vec<u32>,
    /// Dataset index of each item.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty (never, for batches from a [`DataLoader`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Labels as an f32 tensor of shape `[B]`.
    pub fn labels_tensor(&self) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            &[self.labels.len()],
            self.labels.iter().map(|&l| l as f32).collect(),
        )?)
    }
}

/// Shuffles `items` in place with Fisher–Yates on `rng`, the same way on every platform.
pub fn fisher_yates<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// A uniform integer in `0..bound` (`bound > 0`), unbiased by rejection.
fn below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    // Values below `2^64 mod bound` would make the low residues more likely; reject them.
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let x = rng.next_u64();
        if x >= threshold {
            return x % bound;
        }
    }
}

/// The order of `0..n` for epoch `epoch` under `seed`: Fisher–Yates on ChaCha8 seeded with
/// `seed` (via `seed_from_u64`) on stream `epoch`.
pub fn shuffled_indices(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    let mut order: Vec<usize> = (0..n).collect();
    fisher_yates(&mut order, &mut rng);
    order
}

/// How the items of one epoch are augmented: the settings, the seed and the epoch, and the
/// position in the epoch of the batch's first item.
#[derive(Clone, Copy)]
struct AugmentAt {
    augment: Augment,
    seed: u64,
    epoch: u64,
    first_position: usize,
}

/// Builds the batch of the given dataset items, augmenting them when `aug` says so; pixels go
/// through `table` (byte to f32, normalised).
fn make_batch(
    ds: &Dataset,
    indices: &[usize],
    table: &[f32; 256],
    aug: Option<AugmentAt>,
) -> Result<Batch> {
    let size = ds.image_size();
    let mut data = Vec::with_capacity(indices.len() * size);
    let mut labels = Vec::with_capacity(indices.len());
    let mut scratch = Vec::with_capacity(size);
    for (k, &i) in indices.iter().enumerate() {
        let (image, label) = ds.get(i).ok_or(DatasetError::IndexOutOfRange {
            index: i,
            len: ds.len(),
        })?;
        let image = match aug {
            Some(a) => {
                let choice = augment::choice(&a.augment, a.seed, a.epoch, a.first_position + k);
                scratch.clear();
                a.augment
                    .apply(image, ds.rows(), ds.cols(), choice, &mut scratch);
                &scratch[..]
            }
            None => image,
        };
        data.extend(image.iter().map(|&b| table[usize::from(b)]));
        labels.push(u32::from(label));
    }
    let images = Tensor::from_vec(&[indices.len(), 1, ds.rows(), ds.cols()], data)?;
    Ok(Batch {
        images,
        labels,
        indices: indices.to_vec(),
    })
}

/// Splits a dataset into batches, optionally shuffled with a seed, optionally dropping the last
/// partial batch, optionally augmented and normalised, with the next batch prepared on a
/// background thread.
///
/// Augmentation is a training setting: [`DataLoader::epoch`] applies it, [`DataLoader::get`]
/// never does, and an evaluation loader is simply built without [`DataLoader::augment`].
#[derive(Debug, Clone)]
pub struct DataLoader {
    dataset: Arc<Dataset>,
    batch_size: usize,
    seed: Option<u64>,
    drop_last: bool,
    prefetch: bool,
    augment: Augment,
    normalize: Option<Normalize>,
}

impl DataLoader {
    /// A loader over `dataset` in order, keeping the last partial batch, with prefetch on.
    pub fn new(dataset: impl Into<Arc<Dataset>>, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(DatasetError::ZeroBatchSize);
        }
        Ok(Self {
            dataset: dataset.into(),
            batch_size,
            seed: None,
            drop_last: false,
            prefetch: true,
            augment: Augment::NONE,
            normalize: None,
        })
    }

    /// Augment every item of [`DataLoader::epoch`] (random crop of the zero-padded image, random
    /// flip; see [`crate::augment`]), drawing from the loader's seed (0 when unshuffled) and the
    /// epoch. Settings that do not fit the dataset's images are an error here, before any batch.
    pub fn augment(mut self, augment: Augment) -> Result<Self> {
        augment.check(self.dataset.rows(), self.dataset.cols())?;
        self.augment = augment;
        Ok(self)
    }

    /// Normalise every pixel after scaling it to `0..=1`: `(x - mean) / std`, in every batch
    /// (training and [`DataLoader::get`]). A non-positive or non-finite std is an error here.
    pub fn normalize(mut self, normalize: Normalize) -> Result<Self> {
        normalize.check()?;
        self.normalize = Some(normalize);
        Ok(self)
    }

    /// The augmentation settings ([`Augment::NONE`] unless set).
    pub fn augmentation(&self) -> Augment {
        self.augment
    }

    /// The normalisation, if any.
    pub fn normalization(&self) -> Option<Normalize> {
        self.normalize
    }

    /// Shuffle every epoch, deterministically from `seed` (see [`shuffled_indices`]).
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Drop the last batch when it is smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Prepare the next batch on a background thread (default on).
    pub fn prefetch(mut self, prefetch: bool) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch yields no batches.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item order of epoch `epoch`: shuffled when a seed is set, else `0..n`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        match self.seed {
            Some(seed) => shuffled_indices(self.dataset.len(), seed, epoch),
            None => (0..self.dataset.len()).collect(),
        }
    }

    /// The value each image byte becomes in a batch (`byte / 255`, then normalised when set):
    /// mapping bytes held elsewhere (on a GPU) through it gives exactly this loader's pixels.
    pub fn byte_values(&self) -> [f32; 256] {
        byte_table(self.normalize)
    }

    /// The dataset indices of each batch of epoch `epoch`, in order: the `indices` of the
    /// batches [`DataLoader::epoch`] yields (without building them), for gathering batches from
    /// data held elsewhere. Augmentation is not part of it.
    pub fn batch_indices(&self, epoch: u64) -> Vec<Vec<usize>> {
        self.order(epoch)
            .chunks(self.batch_size)
            .take(self.len())
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// Batch `i` in dataset order (unshuffled, never augmented, normalised when set), e.g. for
    /// evaluation.
    pub fn get(&self, i: usize) -> Result<Batch> {
        let len = self.len();
        if i >= len {
            return Err(DatasetError::IndexOutOfRange { index: i, len });
        }
        let start = i * self.batch_size;
        let end = (start + self.batch_size).min(self.dataset.len());
        let indices: Vec<usize> = (start..end).collect();
        make_batch(&self.dataset, &indices, &byte_table(self.normalize), None)
    }

    /// The batches of epoch `epoch`, in that epoch's order, augmented when set.
    pub fn epoch(&self, epoch: u64) -> Epoch {
        self.epoch_from(epoch, 0)
    }

    /// The batches of epoch `epoch` from batch `first` on (0-based): exactly the tail of
    /// [`DataLoader::epoch`], without building the batches before it, e.g. to continue an
    /// epoch that was interrupted after `first` optimizer steps. `first` at or past the end
    /// gives an empty epoch.
    pub fn epoch_from(&self, epoch: u64, first: usize) -> Epoch {
        let mut plan = self.plan(epoch);
        plan.first = first.min(plan.batches);
        let (batches, first) = (plan.batches, plan.first);
        let state = if self.prefetch && first < batches {
            // One batch in the channel plus one being built: the next batch is always ready.
            let (tx, rx) = sync_channel(1);
            let handle = std::thread::Builder::new()
                .name("datasets-prefetch".into())
                .spawn(move || plan.produce(tx));
            match handle {
                Ok(h) => State::Prefetch {
                    rx,
                    handle: Some(h),
                },
                // Spawning failed (resource limits): nothing is lost, build batches inline.
                Err(_) => State::Inline(Box::new(self.plan(epoch))),
            }
        } else {
            State::Inline(Box::new(plan))
        };
        Epoch {
            state,
            next: first,
            batches,
            failed: false,
        }
    }

    fn plan(&self, epoch: u64) -> Plan {
        Plan {
            dataset: Arc::clone(&self.dataset),
            order: self.order(epoch),
            batch_size: self.batch_size,
            batches: self.len(),
            first: 0,
            table: byte_table(self.normalize),
            augment: (!self.augment.is_none()).then_some((
                self.augment,
                self.seed.unwrap_or(0),
                epoch,
            )),
        }
    }
}

/// Everything needed to build an epoch's batches.
struct Plan {
    dataset: Arc<Dataset>,
    order: Vec<usize>,
    batch_size: usize,
    batches: usize,
    /// The first batch to produce.
    first: usize,
    table: [f32; 256],
    /// Settings, seed and epoch, when the epoch is augmented.
    augment: Option<(Augment, u64, u64)>,
}

impl Plan {
    fn batch(&self, i: usize) -> Result<Batch> {
        let start = i * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let aug = self.augment.map(|(augment, seed, epoch)| AugmentAt {
            augment,
            seed,
            epoch,
            first_position: start,
        });
        make_batch(&self.dataset, &self.order[start..end], &self.table, aug)
    }

    fn produce(self, tx: SyncSender<Result<Batch>>) {
        for i in self.first..self.batches {
            if tx.send(self.batch(i)).is_err() {
                return; // The consumer was dropped.
            }
        }
    }
}

enum State {
    Inline(Box<Plan>),
    Prefetch {
        rx: Receiver<Result<Batch>>,
        handle: Option<JoinHandle<()>>,
    },
}

/// Iterator over one epoch's batches (see [`DataLoader::epoch`]).
pub struct Epoch {
    state: State,
    next: usize,
    batches: usize,
    failed: bool,
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.batches || self.failed {
            return None;
        }
        let item = match &mut self.state {
            State::Inline(plan) => plan.batch(self.next),
            State::Prefetch { rx, .. } => match rx.recv() {
                Ok(item) => item,
                Err(_) => {
                    // The producer ended before sending every batch: it panicked.
                    self.failed = true;
                    Err(DatasetError::PrefetchThread)
                }
            },
        };
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.failed {
            0
        } else {
            self.batches - self.next
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Epoch {}

impl Drop for Epoch {
    fn drop(&mut self) {
        if let State::Prefetch { rx, handle } = &mut self.state {
            // Close the channel first so a blocked producer wakes up and exits, then join it.
            let (_, dead_rx) = sync_channel(0);
            drop(std::mem::replace(rx, dead_rx));
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("next", &self.next)
            .field("batches", &self.batches)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        let images: Vec<u8> = (0..n * 4).map(|i| (i % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        Dataset::from_parts(images, labels, 2, 2, 10).expect("valid toy dataset")
    }

    #[test]
    fn shuffle_is_a_fixed_permutation() {
        let a = shuffled_indices(10, 42, 0);
        // Pinned: the same on every platform. Changing the algorithm changes training runs.
        assert_eq!(a, shuffled_indices(10, 42, 0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_ne!(a, shuffled_indices(10, 42, 1), "epochs differ");
        assert_ne!(a, shuffled_indices(10, 43, 0), "seeds differ");
        assert_eq!(shuffled_indices(0, 1, 0), Vec::<usize>::new());
        assert_eq!(shuffled_indices(1, 1, 0), vec![0]);
    }

    #[test]
    fn shuffle_golden_order() {
        // Golden value computed by this implementation; it must never change across platforms.
        assert_eq!(shuffled_indices(8, 0, 0), GOLDEN_8_0_0);
    }

    const GOLDEN_8_0_0: [usize; 8] = [3, 6, 0, 5, 1, 7, 2, 4];

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[below(&mut rng, 3) as usize] += 1;
        }
        // Expected 10,000 each; 4 sigma is about 330.
        assert!(
            counts.iter().all(|&c| (9_600..10_400).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn batches_cover_the_epoch() {
        let ds = toy(10);
        for prefetch in [false, true] {
            let dl = DataLoader::new(ds.clone(), 4)
                .expect("loader")
                .shuffle(3)
                .prefetch(prefetch);
            assert_eq!(dl.len(), 3);
            let batches: Vec<Batch> = dl.epoch(0).collect::<Result<_>>().expect("batches");
            assert_eq!(
                batches.iter().map(Batch::len).collect::<Vec<_>>(),
                vec![4, 4, 2]
            );
            let seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
            assert_eq!(seen, dl.order(0));
            let b = &batches[0];
            assert_eq!(b.images.shape().dims(), &[4, 1, 2, 2]);
            for (k, &i) in b.indices.iter().enumerate() {
                let (img, label) = ds.get(i).expect("in range");
                assert_eq!(b.labels[k], u32::from(label));
                let px = &b.images.data()[k * 4..k * 4 + 4];
                for (p, &byte) in px.iter().zip(img) {
                    assert_eq!(*p, byte as f32 / 255.0);
                }
            }
            let dl = dl.drop_last(true);
            assert_eq!(dl.len(), 2);
            assert_eq!(dl.epoch(1).count(), 2);
        }
    }

    #[test]
    fn an_epoch_continued_from_a_batch_is_the_tail_of_the_whole_epoch() {
        for prefetch in [false, true] {
            let dl = DataLoader::new(toy(10), 3)
                .expect("loader")
                .shuffle(5)
                .augment(Augment {
                    crop_padding: 1,
                    flip: true,
                })
                .expect("augment fits 2x2 images")
                .prefetch(prefetch);
            let whole: Vec<Batch> = dl.epoch(2).collect::<Result<_>>().expect("batches");
            for first in 0..=5 {
                let tail: Vec<Batch> = dl
                    .epoch_from(2, first)
                    .collect::<Result<_>>()
                    .expect("batches");
                assert_eq!(
                    dl.epoch_from(2, first).len(),
                    whole.len().saturating_sub(first)
                );
                assert_eq!(tail.len(), whole.len().saturating_sub(first));
                for (a, b) in tail.iter().zip(&whole[first.min(whole.len())..]) {
                    assert_eq!(a.indices, b.indices);
                    assert_eq!(a.labels, b.labels);
                    assert_eq!(a.images.data(), b.images.data(), "same augmentation");
                }
            }
        }
    }

    #[test]
    fn get_is_in_order_and_checked() {
        let dl = DataLoader::new(toy(5), 2).expect("loader").shuffle(1);
        let b = dl.get(2).expect("last batch");
        assert_eq!(b.indices, vec![4]);
        assert_eq!(b.labels_tensor().expect("tensor").data(), &[4.0]);
        assert!(matches!(
            dl.get(3),
            Err(DatasetError::IndexOutOfRange { index: 3, len: 3 })
        ));
        assert!(matches!(
            DataLoader::new(toy(1), 0),
            Err(DatasetError::ZeroBatchSize)
        ));
    }

    #[test]
    fn dropping_an_epoch_early_stops_the_thread() {
        let dl = DataLoader::new(toy(100), 1).expect("loader");
        let mut e = dl.epoch(0);
        assert_eq!(e.len(), 100);
        assert!(e.next().is_some());
        drop(e); // Must not hang.
    }

    #[test]
    fn batch_indices_and_byte_values_describe_the_epochs_batches() {
        let ds = Arc::new(toy(10));
        for drop_last in [false, true] {
            let dl = DataLoader::new(ds.clone(), 4)
                .unwrap()
                .shuffle(3)
                .drop_last(drop_last)
                .normalize(Normalize {
                    mean: 0.25,
                    std: 0.5,
                })
                .unwrap();
            let values = dl.byte_values();
            for epoch in 0..3 {
                let indices = dl.batch_indices(epoch);
                let batches: Vec<Batch> = dl.epoch(epoch).map(|b| b.unwrap()).collect();
                assert_eq!(indices.len(), batches.len());
                for (idx, b) in indices.iter().zip(&batches) {
                    assert_eq!(idx, &b.indices);
                    let pixels: Vec<f32> = idx
                        .iter()
                        .flat_map(|&i| ds.image(i).unwrap())
                        .map(|&v| values[v as usize])
                        .collect();
                    assert_eq!(pixels, b.images.data());
                }
            }
        }
    }
}
