//! The loader's augmentation (random crop of the zero-padded image, random flip) and
//! normalisation: deterministic, what they claim to be, never in evaluation batches, and bad
//! settings refused before any work.

use datasets::{Augment, Batch, DataLoader, Dataset, DatasetError, Normalize};

const SIDE: usize = 8;

/// `n` images of `SIDE × SIDE` whose pixels are all distinct and non-zero within an image (so a
/// shift or mirror can be recognised exactly).
fn toy(n: usize) -> Dataset {
    let mut images = Vec::with_capacity(n * SIDE * SIDE);
    for i in 0..n {
        for p in 0..SIDE * SIDE {
            images.push((1 + p + 3 * i) as u8);
        }
    }
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    Dataset::from_parts(images, labels, SIDE, SIDE, 10).unwrap()
}

fn bytes_of(b: &Batch, k: usize) -> Vec<u8> {
    b.images.data()[k * SIDE * SIDE..(k + 1) * SIDE * SIDE]
        .iter()
        .map(|&v| (v * 255.0).round() as u8)
        .collect()
}

fn epoch_images(dl: &DataLoader, epoch: u64) -> Vec<f32> {
    dl.epoch(epoch)
        .flat_map(|b| b.unwrap().images.into_vec())
        .collect()
}

const CROP_FLIP: Augment = Augment {
    crop_padding: 2,
    flip: true,
};

#[test]
fn the_same_seed_gives_the_same_images_whatever_the_batching() {
    let base = |batch, prefetch| {
        DataLoader::new(toy(50), batch)
            .unwrap()
            .shuffle(9)
            .prefetch(prefetch)
            .augment(CROP_FLIP)
            .unwrap()
    };
    let a = epoch_images(&base(7, true), 3);
    assert_eq!(a, epoch_images(&base(7, true), 3), "same seed, same images");
    assert_eq!(
        a,
        epoch_images(&base(7, false), 3),
        "prefetch changes nothing"
    );
    assert_eq!(
        a,
        epoch_images(&base(50, true), 3),
        "batch size changes nothing"
    );
    assert_ne!(a, epoch_images(&base(7, true), 4), "epochs differ");
    let other_seed = DataLoader::new(toy(50), 7)
        .unwrap()
        .shuffle(10)
        .augment(CROP_FLIP)
        .unwrap();
    assert_ne!(a, epoch_images(&other_seed, 3), "seeds differ");
}

/// The offset `(dy, dx)` and mirroring that turn `src` into `out` (pixels outside the image are
/// zero), if any.
fn explain(src: &[u8], out: &[u8], pad: isize) -> Option<(isize, isize, bool)> {
    for flip in [false, true] {
        for dy in -pad..=pad {
            for dx in -pad..=pad {
                let fits = (0..SIDE as isize).all(|y| {
                    (0..SIDE as isize).all(|x| {
                        let xm = if flip { SIDE as isize - 1 - x } else { x };
                        let (sy, sx) = (y + dy, xm + dx);
                        let inside =
                            (0..SIDE as isize).contains(&sy) && (0..SIDE as isize).contains(&sx);
                        let want = if inside {
                            src[(sy * SIDE as isize + sx) as usize]
                        } else {
                            0
                        };
                        out[(y * SIDE as isize + x) as usize] == want
                    })
                });
                if fits {
                    return Some((dy, dx, flip));
                }
            }
        }
    }
    None
}

#[test]
fn a_crop_of_the_padded_image_is_the_image_shifted_with_zeros_around() {
    let ds = toy(64);
    let dl = DataLoader::new(ds.clone(), 16)
        .unwrap()
        .shuffle(1)
        .augment(Augment {
            crop_padding: 2,
            flip: false,
        })
        .unwrap();
    let mut offsets = std::collections::HashSet::new();
    for batch in dl.epoch(0) {
        let batch = batch.unwrap();
        for (k, &i) in batch.indices.iter().enumerate() {
            let (src, _) = ds.get(i).unwrap();
            let (dy, dx, flip) = explain(src, &bytes_of(&batch, k), 2)
                .unwrap_or_else(|| panic!("item {i} is not a shifted copy"));
            assert!(!flip);
            offsets.insert((dy, dx));
        }
    }
    // 64 draws over 25 offsets: most of them appear, the extremes included.
    assert!(offsets.len() >= 15, "{offsets:?}");
    assert!(offsets.iter().any(|&(dy, _)| dy.abs() == 2), "{offsets:?}");
}

#[test]
fn a_flip_is_a_mirror_and_happens_about_half_the_time() {
    let ds = toy(200);
    let dl = DataLoader::new(ds.clone(), 32)
        .unwrap()
        .shuffle(2)
        .augment(Augment {
            crop_padding: 0,
            flip: true,
        })
        .unwrap();
    let mut flipped = 0;
    for batch in dl.epoch(0) {
        let batch = batch.unwrap();
        for (k, &i) in batch.indices.iter().enumerate() {
            let (src, _) = ds.get(i).unwrap();
            let out = bytes_of(&batch, k);
            let mirror: Vec<u8> = src
                .chunks(SIDE)
                .flat_map(|row| row.iter().rev().copied())
                .collect();
            if out == mirror {
                flipped += 1;
            } else {
                assert_eq!(out, src, "item {i}: neither itself nor its mirror");
            }
        }
    }
    // Binomial(200, 1/2): 4 sigma is about 28.
    assert!((72..=128).contains(&flipped), "{flipped} of 200 flipped");
}

#[test]
fn evaluation_batches_are_never_augmented() {
    let ds = toy(20);
    let plain = DataLoader::new(ds.clone(), 6).unwrap();
    let augmented = DataLoader::new(ds.clone(), 6)
        .unwrap()
        .augment(CROP_FLIP)
        .unwrap();
    // `get` (evaluation, in order) ignores augmentation.
    for i in 0..plain.len() {
        assert_eq!(
            plain.get(i).unwrap().images.data(),
            augmented.get(i).unwrap().images.data()
        );
    }
    // A loader without augmentation gives the dataset's pixels, byte / 255.
    let b = plain.epoch(0).next().unwrap().unwrap();
    for (k, &i) in b.indices.iter().enumerate() {
        assert_eq!(bytes_of(&b, k), ds.get(i).unwrap().0);
    }
    // ... while the augmented epoch does change some images.
    assert_ne!(epoch_images(&plain, 0), epoch_images(&augmented, 0));
}

#[test]
fn normalisation_is_applied_after_scaling_to_unit_range() {
    let ds = toy(5);
    let n = Normalize {
        mean: 0.2860,
        std: 0.3530,
    };
    let dl = DataLoader::new(ds.clone(), 5)
        .unwrap()
        .normalize(n)
        .unwrap();
    let b = dl.get(0).unwrap();
    let e = dl.epoch(0).next().unwrap().unwrap();
    assert_eq!(b.images.data(), e.images.data());
    for (v, &byte) in b.images.data().iter().zip(ds.images()) {
        assert_eq!(*v, (byte as f32 / 255.0 - 0.2860) / 0.3530);
    }
    // Padding is black before normalisation: (0 - mean) / std, as torchvision's
    // RandomCrop(padding) then Normalize.
    let dl = DataLoader::new(ds, 5)
        .unwrap()
        .normalize(n)
        .unwrap()
        .augment(Augment {
            crop_padding: 7,
            flip: false,
        })
        .unwrap();
    let imgs = epoch_images(&dl, 0);
    assert!(imgs.contains(&(-0.2860 / 0.3530)), "some padding is seen");
}

#[test]
fn settings_that_do_not_fit_are_refused_before_any_work() {
    for pad in [SIDE, SIDE + 1, 100] {
        let err = DataLoader::new(toy(3), 2)
            .unwrap()
            .augment(Augment {
                crop_padding: pad,
                flip: true,
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::InvalidSetting {
                    setting: "augment",
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("crop padding {pad}")) && msg.contains("8×8"),
            "{msg}"
        );
    }
    assert!(
        DataLoader::new(toy(3), 2)
            .unwrap()
            .augment(Augment {
                crop_padding: SIDE - 1,
                flip: false
            })
            .is_ok()
    );
    for (mean, std) in [
        (0.0, 0.0),
        (0.0, -1.0),
        (f32::NAN, 1.0),
        (0.0, f32::INFINITY),
    ] {
        let err = DataLoader::new(toy(3), 2)
            .unwrap()
            .normalize(Normalize { mean, std })
            .unwrap_err();
        assert!(err.to_string().starts_with("normalize: "), "{err}");
    }
}
