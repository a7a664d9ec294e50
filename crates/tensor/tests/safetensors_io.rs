//! Safetensors round trips (f32, f16, i64, metadata), atomic writes and every error path.

use proptest::prelude::*;
use tensor::{FloatStorage, NamedTensors, SeededRng, Tensor, TensorError, TensorFile, f16};

fn sample() -> NamedTensors {
    let mut rng = SeededRng::new(7);
    let mut set = NamedTensors::new();
    set.insert("w", &Tensor::randn(&[2, 3, 4], &mut rng).unwrap())
        .unwrap();
    set.insert("s", &Tensor::scalar(1.5)).unwrap();
    set.insert_f16(
        "h",
        &Tensor::from_vec(&[3], vec![0.1, -2.0, 65504.0]).unwrap(),
    )
    .unwrap();
    set.insert_i64("idx", &[2, 2], &[0, -1, 7, i64::MAX])
        .unwrap();
    set.insert_labels("labels", &[3, 1, 4, 1, 5]).unwrap();
    set
}

#[test]
fn f32_round_trip_is_exact() {
    let mut rng = SeededRng::new(1);
    let t = Tensor::randn(&[4, 1, 5, 5], &mut rng).unwrap();
    let mut set = NamedTensors::new();
    set.insert("conv.weight", &t).unwrap();
    let file = TensorFile::from_bytes(set.to_bytes().unwrap()).unwrap();
    assert_eq!(file.names(), vec!["conv.weight"]);
    assert_eq!(file.dtype("conv.weight").unwrap(), "F32");
    assert_eq!(file.dims("conv.weight").unwrap(), &[4, 1, 5, 5]);
    assert_eq!(file.tensor("conv.weight").unwrap(), t);
}

#[test]
fn f16_round_trip_widens_the_rounded_values() {
    let t = Tensor::from_vec(&[2, 2], vec![0.1, 1.0 / 3.0, -7.25, 1e-3]).unwrap();
    let mut set = NamedTensors::new();
    set.insert_float("h", &t, FloatStorage::F16).unwrap();
    let bytes = set.to_bytes().unwrap();
    let file = TensorFile::from_bytes(bytes).unwrap();
    assert_eq!(file.dtype("h").unwrap(), "F16");
    let back = file.tensor("h").unwrap();
    assert_eq!(back, Tensor::from_f16(&[2, 2], &t.to_f16()).unwrap());
    // f16 keeps ~3 decimal digits: within 1e-3 relative.
    assert!(back.allclose(&t, 1e-3, 0.0).is_ok());
}

#[test]
fn i64_and_labels_round_trip() {
    let file = TensorFile::from_bytes(sample().to_bytes().unwrap()).unwrap();
    let (shape, data) = file.i64("idx").unwrap();
    assert_eq!(shape.dims(), &[2, 2]);
    assert_eq!(data, vec![0, -1, 7, i64::MAX]);
    assert_eq!(file.labels("labels").unwrap(), vec![3, 1, 4, 1, 5]);
    assert!(file.is_i64("labels").unwrap());
    assert!(!file.is_i64("w").unwrap());
}

#[test]
fn metadata_round_trips_and_defaults_to_empty() {
    let mut set = sample();
    set.set_metadata("format", "pt");
    set.set_metadata("epoch", "3");
    set.set_metadata("epoch", "4");
    let file = TensorFile::from_bytes(set.to_bytes().unwrap()).unwrap();
    assert_eq!(file.metadata().len(), 2);
    assert_eq!(file.metadata()["epoch"], "4");
    assert_eq!(file.metadata()["format"], "pt");
    let plain = TensorFile::from_bytes(sample().to_bytes().unwrap()).unwrap();
    assert!(plain.metadata().is_empty());
}

#[test]
fn whole_sample_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let set = sample();
    set.write(&path).unwrap();
    let file = TensorFile::open(&path).unwrap();
    assert_eq!(file.path(), path.as_path());
    assert_eq!(file.names(), set.names());
    assert_eq!(file.len(), 5);
    assert_eq!(file.tensor("s").unwrap().dims(), &[] as &[usize]);
    assert_eq!(file.tensor("s").unwrap().data(), &[1.5]);
    assert_eq!(
        file.tensor("h").unwrap().data(),
        &[f16::from_f32(0.1).to_f32(), -2.0, 65504.0]
    );
}

#[test]
fn empty_set_round_trips() {
    let set = NamedTensors::new();
    assert!(set.is_empty());
    let file = TensorFile::from_bytes(set.to_bytes().unwrap()).unwrap();
    assert!(file.is_empty());
}

#[test]
fn atomic_write_replaces_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    sample().write(&path).unwrap();
    let mut second = NamedTensors::new();
    second.insert("only", &Tensor::ones(&[2]).unwrap()).unwrap();
    second.write(&path).unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries, vec!["model.safetensors".to_string()]);
    assert_eq!(TensorFile::open(&path).unwrap().names(), vec!["only"]);
}

#[test]
fn failed_write_leaves_no_temp_file_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // The target is an existing directory: rename onto it fails.
    let target = dir.path().join("taken");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let err = sample().write(&target).unwrap_err();
    assert!(
        matches!(&err, TensorError::Io { path, .. } if *path == target),
        "{err}"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn write_into_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/x.safetensors");
    let err = sample().write(&path).unwrap_err();
    assert!(matches!(err, TensorError::Io { .. }), "{err}");
}

#[test]
fn duplicate_name_is_an_error() {
    let mut set = NamedTensors::new();
    set.insert("a", &Tensor::ones(&[1]).unwrap()).unwrap();
    let err = set.insert_i64("a", &[1], &[1]).unwrap_err();
    assert!(matches!(err, TensorError::DuplicateTensor { ref name } if name == "a"));
}

#[test]
fn i64_length_must_match_shape() {
    let err = NamedTensors::new()
        .insert_i64("l", &[2, 3], &[1, 2, 3])
        .unwrap_err();
    assert!(matches!(
        err,
        TensorError::LengthMismatch {
            expected: 6,
            found: 3,
            ..
        }
    ));
}

#[test]
fn missing_tensor_names_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    sample().write(&path).unwrap();
    let err = TensorFile::open(&path).unwrap().tensor("nope").unwrap_err();
    assert!(
        matches!(&err, TensorError::MissingTensor { path: p, name } if *p == path && name == "nope")
    );
    let msg = err.to_string();
    assert!(
        msg.contains("m.safetensors") && msg.contains("nope"),
        "{msg}"
    );
}

#[test]
fn wrong_dtype_both_ways() {
    let file = TensorFile::from_bytes(sample().to_bytes().unwrap()).unwrap();
    let err = file.tensor("labels").unwrap_err();
    assert!(
        matches!(&err, TensorError::WrongDtype { name, found, .. } if name == "labels" && found == "I64"),
        "{err}"
    );
    let err = file.i64("w").unwrap_err();
    assert!(
        matches!(&err, TensorError::WrongDtype { name, found, expected, .. }
            if name == "w" && found == "F32" && expected == "I64"),
        "{err}"
    );
    assert!(err.to_string().contains("<memory>"));
}

#[test]
fn negative_label_is_an_error() {
    let file = TensorFile::from_bytes(sample().to_bytes().unwrap()).unwrap();
    let err = file.labels("idx").unwrap_err();
    assert!(matches!(
        err,
        TensorError::BadLabel {
            index: 1,
            value: -1,
            ..
        }
    ));
}

/// Builds a safetensors buffer from a raw JSON header and data bytes.
fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    let bytes = sample().to_bytes().unwrap();
    for cut in 0..bytes.len() {
        let err = TensorFile::from_bytes(bytes[..cut].to_vec()).unwrap_err();
        assert!(
            matches!(
                err,
                TensorError::Truncated { .. } | TensorError::InvalidFile { .. }
            ),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn truncated_file_on_disk_names_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let mut set = NamedTensors::new();
    set.insert("big", &Tensor::ones(&[100]).unwrap()).unwrap();
    let bytes = set.to_bytes().unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = TensorFile::open(&path).unwrap_err();
    assert!(
        matches!(&err, TensorError::Truncated { path: p, .. } if *p == path),
        "{err}"
    );
    assert!(err.to_string().contains("`big`"), "{err}");
    std::fs::write(&path, &bytes[..5]).unwrap();
    assert!(matches!(
        TensorFile::open(&path).unwrap_err(),
        TensorError::Truncated { .. }
    ));
}

#[test]
fn garbage_is_not_a_safetensors_file() {
    let cases: Vec<Vec<u8>> = vec![
        b"definitely not a safetensors file, just some text".to_vec(),
        raw_file("not json", b""),
        raw_file("[1, 2, 3]", b""),
        raw_file("\u{0}\u{1}", b""),
        {
            let mut v = 4u64.to_le_bytes().to_vec();
            v.extend_from_slice(&[0xff, 0xfe, 0xfd, 0xfc]);
            v
        },
        raw_file(
            r#"{"a":{"dtype":"NOPE","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        ),
        raw_file(
            r#"{"a":{"dtype":"F32","shape":"x","data_offsets":[0,4]}}"#,
            &[0; 4],
        ),
        raw_file(
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
            &[0; 4],
        ),
        // Gap before the tensor's data.
        raw_file(
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            &[0; 8],
        ),
        // Trailing bytes after the data.
        raw_file(
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 12],
        ),
        raw_file(r#"{"__metadata__":{"k":1}}"#, b""),
    ];
    for (i, bytes) in cases.into_iter().enumerate() {
        match TensorFile::from_bytes(bytes) {
            Err(TensorError::InvalidFile { .. } | TensorError::Truncated { .. }) => {}
            other => panic!("case {i}: {other:?}"),
        }
    }
}

#[test]
fn hostile_offsets_and_shapes_do_not_overflow() {
    let huge = usize::MAX;
    let headers = [
        format!(r#"{{"a":{{"dtype":"U8","shape":[{huge}],"data_offsets":[0,{huge}]}}}}"#),
        format!(r#"{{"a":{{"dtype":"F64","shape":[{huge},{huge}],"data_offsets":[0,8]}}}}"#),
        // Offsets summing near usize::MAX (overflows naive end-of-buffer arithmetic).
        {
            let s = 1usize << 60;
            let e = huge - 3;
            format!(
                r#"{{"a":{{"dtype":"U8","shape":[{s}],"data_offsets":[0,{s}]}},"b":{{"dtype":"U8","shape":[{}],"data_offsets":[{s},{e}]}}}}"#,
                e - s
            )
        },
    ];
    for h in headers {
        let err = TensorFile::from_bytes(raw_file(&h, &[0; 16])).unwrap_err();
        assert!(
            matches!(
                err,
                TensorError::Truncated { .. } | TensorError::InvalidFile { .. }
            ),
            "{err}"
        );
    }
    // A header length near u64::MAX.
    let mut v = u64::MAX.to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    assert!(matches!(
        TensorFile::from_bytes(v).unwrap_err(),
        TensorError::Truncated { .. }
    ));
}

#[test]
fn data_length_not_matching_shape_names_the_tensor() {
    // 3 F32 elements need 12 bytes; the header claims 8.
    let bytes = raw_file(
        r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    let err = TensorFile::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(&err, TensorError::DataLength { name, expected: 12, found: 8, .. } if name == "w"),
        "{err}"
    );
}

#[test]
fn other_dtypes_are_listed_but_refused() {
    let bytes = raw_file(
        r#"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    let file = TensorFile::from_bytes(bytes).unwrap();
    assert_eq!(file.dtype("b").unwrap(), "BF16");
    assert!(matches!(
        file.tensor("b").unwrap_err(),
        TensorError::WrongDtype { .. }
    ));
    assert!(matches!(
        file.labels("b").unwrap_err(),
        TensorError::WrongDtype { .. }
    ));
}

fn dims_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, 0..5)
}

proptest! {
    #[test]
    fn random_shapes_round_trip(dims in dims_strategy(), seed in any::<u64>(), half in any::<bool>()) {
        let mut rng = SeededRng::new(seed);
        let t = Tensor::randn(&dims, &mut rng).unwrap();
        let labels: Vec<i64> = t.data().iter().map(|v| (v * 1000.0) as i64).collect();
        let mut set = NamedTensors::new();
        let storage = if half { FloatStorage::F16 } else { FloatStorage::F32 };
        set.insert_float("t", &t, storage).unwrap();
        set.insert_i64("l", &dims, &labels).unwrap();
        set.set_metadata("seed", seed.to_string());
        let file = TensorFile::from_bytes(set.to_bytes().unwrap()).unwrap();
        let back = file.tensor("t").unwrap();
        prop_assert_eq!(back.dims(), dims.as_slice());
        let want = if half { Tensor::from_f16(&dims, &t.to_f16()).unwrap() } else { t.clone() };
        prop_assert_eq!(back, want);
        let (shape, data) = file.i64("l").unwrap();
        prop_assert_eq!(shape.dims(), dims.as_slice());
        prop_assert_eq!(data, labels);
        prop_assert_eq!(file.metadata().get("seed"), Some(&seed.to_string()));
    }

    #[test]
    fn random_truncation_or_corruption_never_panics(
        dims in dims_strategy(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut set = NamedTensors::new();
        set.insert("t", &Tensor::ones(&dims).unwrap()).unwrap();
        let mut bytes = set.to_bytes().unwrap();
        let i = flip.index(bytes.len());
        bytes[i] = byte;
        let _ = TensorFile::from_bytes(bytes.clone()).and_then(|f| f.tensor("t"));
        let n = cut.index(bytes.len());
        let _ = TensorFile::from_bytes(bytes[..n].to_vec()).and_then(|f| f.tensor("t"));
    }
}

#[test]
fn the_same_tensors_and_metadata_are_the_same_bytes_every_time() {
    let write = || {
        let mut set = sample();
        for (k, v) in [
            ("format", "x/1"),
            ("epoch", "3"),
            ("step", "30"),
            ("b", "2"),
            ("a", "1"),
        ] {
            set.set_metadata(k, v);
        }
        set.to_bytes().unwrap()
    };
    // Several writes, each serializing the metadata from a new hash map (a new random order).
    let first = write();
    for _ in 0..8 {
        assert_eq!(write(), first);
    }
    let back = TensorFile::from_bytes(first).unwrap();
    assert_eq!(back.metadata().get("epoch").map(String::as_str), Some("3"));
    assert_eq!(back.metadata().len(), 5);
    assert_eq!(back.tensor("w").unwrap(), sample_w());
}

fn sample_w() -> Tensor {
    Tensor::randn(&[2, 3, 4], &mut SeededRng::new(7)).unwrap()
}
