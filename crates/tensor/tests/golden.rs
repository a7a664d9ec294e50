//! The golden harness: every shipped case loads and matches its manifest; a second directory in
//! the same format works unchanged; manifest/file disagreements are errors, never skips.
#![cfg(feature = "golden")]

use std::collections::BTreeSet;
use std::path::Path;
use tensor::golden::{self, Golden, GoldenOp, GoldenTensor};
use tensor::{NamedTensors, Tensor, TensorError};

#[test]
fn default_dir_is_shared_golden_next_to_the_workspace() {
    let root = golden::workspace_root().unwrap();
    assert!(root.join("Cargo.toml").is_file());
    assert!(root.join("crates/tensor").is_dir());
    if std::env::var_os(golden::GOLDEN_DIR_ENV).is_none() {
        assert_eq!(
            golden::default_dir().unwrap(),
            root.join("../shared/golden")
        );
    }
}

#[test]
fn every_shipped_case_loads_and_matches_its_manifest() {
    let g = Golden::open_default().unwrap();
    let cases = g.load_all().unwrap();
    assert!(!cases.is_empty());
    assert_eq!(cases.len(), g.case_names().len());
    for case in &cases {
        let listed: BTreeSet<&str> = case
            .inputs
            .iter()
            .chain(&case.upstream)
            .chain(&case.outputs)
            .map(String::as_str)
            .collect();
        let shaped: BTreeSet<&str> = case.shapes.keys().map(String::as_str).collect();
        assert_eq!(listed, shaped, "{}", case.name);
        assert_eq!(
            case.names(),
            shaped.into_iter().collect::<Vec<_>>(),
            "{}",
            case.name
        );
        for (name, dims) in &case.shapes {
            assert_eq!(
                case.get(name).unwrap().dims(),
                dims.as_slice(),
                "{}/{name}",
                case.name
            );
            if let GoldenTensor::F32(t) = case.get(name).unwrap() {
                assert!(
                    t.data().iter().all(|v| v.is_finite()),
                    "{}/{name}",
                    case.name
                );
            }
        }
        assert!(
            case.tolerance.rtol > 0.0 && case.tolerance.atol > 0.0,
            "{}",
            case.name
        );
        // Each expected output compares equal to itself under the case tolerance.
        for out in &case.outputs {
            if let Ok(t) = case.tensor(out) {
                case.compare(out, t).unwrap();
            }
        }
    }
    let ops: BTreeSet<GoldenOp> = cases.iter().map(|c| c.op).collect();
    assert_eq!(
        ops.len(),
        GoldenOp::ALL.len(),
        "every op has at least one shipped case"
    );
}

#[test]
fn load_cases_by_op_and_typed_params() {
    let convs = golden::load_cases(GoldenOp::Conv2d).unwrap();
    assert!(convs.iter().all(|c| c.op == GoldenOp::Conv2d));
    let c1 = convs.iter().find(|c| c.name == "conv2d_lenet_c1").unwrap();
    assert_eq!(c1.param_usize2("stride").unwrap(), [1, 1]);
    assert_eq!(c1.param_usize2("padding").unwrap(), [2, 2]);
    assert_eq!(c1.param_usize("groups").unwrap(), 1);
    assert_eq!(c1.tensor("x").unwrap().dims(), &[3, 1, 28, 28]);
    assert!(c1.param_str("stride").is_err());
    assert!(c1.param("nope").is_err());

    let g = Golden::open_default().unwrap();
    let ce = g.case("cross_entropy").unwrap();
    assert_eq!(ce.op, GoldenOp::CrossEntropy);
    assert_eq!(ce.param_str("reduction").unwrap(), "mean");
    let labels = ce.labels("labels").unwrap();
    assert_eq!(labels.len(), ce.shapes["labels"][0]);
    let classes = ce.shapes["logits"][1];
    assert!(labels.iter().all(|&l| l < classes));
    assert!(ce.tensor("labels").is_err(), "labels are I64, not F32");
    assert!(ce.i64("logits").is_err(), "logits are F32, not I64");

    let adam = g.case("adam").unwrap();
    assert_eq!(adam.param_f64_2("betas").unwrap(), [0.9, 0.999]);
    assert_eq!(adam.param_usize("steps").unwrap(), 3);
    let sgd = g.case("sgd_momentum_wd").unwrap();
    assert!(!sgd.param_bool("nesterov").unwrap());
    assert!((sgd.param_f64("lr").unwrap() - 0.1).abs() < 1e-12);

    let lenet = g.case("lenet_seed_sgd").unwrap();
    assert_eq!(lenet.param_str("model").unwrap(), "seed");
    let names = lenet.param_strs("param_names").unwrap();
    assert_eq!(names.len(), 10);
    for n in names {
        lenet.tensor(&format!("param.{n}")).unwrap();
        lenet.tensor(&format!("final.{n}")).unwrap();
    }
    assert!(g.case("no_such_case").is_err());
}

#[test]
fn compare_reports_the_case_and_tensor() {
    let relu = golden::load_cases(GoldenOp::Relu).unwrap().remove(0);
    let y = relu.tensor("y").unwrap().map(|v| v + 1.0);
    let err = relu.compare("y", &y).unwrap_err().to_string();
    assert!(err.contains("relu") && err.contains("`y`"), "{err}");
}

// ---- a second, synthetic golden directory ----

fn manifest(cases: &str) -> String {
    format!(r#"{{"format": 1, "made_with": "test", "cases": [{cases}]}}"#)
}

fn relu_case(name: &str, op: &str, x_shape: &str) -> String {
    format!(
        r#"{{"name": "{name}", "op": "{op}", "params": {{"kernel": 2, "stride": [2, 1]}},
            "inputs": ["x", "labels"], "upstream": ["grad_y"], "outputs": ["y"],
            "shapes": {{"x": {x_shape}, "grad_y": [2, 3], "y": [2, 3], "labels": [2]}},
            "tolerance": {{"rtol": 0.001, "atol": 0.0001}}, "note": "synthetic"}}"#
    )
}

fn write_case_file(dir: &Path, name: &str, skip: Option<&str>, extra: bool) {
    let x = Tensor::from_vec(&[2, 3], vec![-1.0, 0.0, 1.0, 2.0, -3.0, 0.5]).unwrap();
    let y = x.map(|v| v.max(0.0));
    let mut set = NamedTensors::new();
    for (n, t) in [("x", &x), ("grad_y", &x), ("y", &y)] {
        if skip != Some(n) {
            set.insert(n, t).unwrap();
        }
    }
    set.insert_labels("labels", &[1, 0]).unwrap();
    if extra {
        set.insert("stray", &x).unwrap();
    }
    set.write(dir.join(format!("{name}.safetensors"))).unwrap();
}

fn golden_dir(manifest_text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), manifest_text).unwrap();
    dir
}

#[test]
fn a_second_directory_works_unchanged() {
    let dir = golden_dir(&manifest(&relu_case("mine", "relu", "[2, 3]")));
    write_case_file(dir.path(), "mine", None, false);
    let g = Golden::open(dir.path()).unwrap();
    assert_eq!(g.dir(), dir.path());
    assert_eq!(g.made_with(), "test");
    assert_eq!(g.case_names_for(GoldenOp::Relu), vec!["mine"]);
    assert!(g.case_names_for(GoldenOp::Tanh).is_empty());
    let cases = g.load_cases(GoldenOp::Relu).unwrap();
    let case = &cases[0];
    assert_eq!(case.note, "synthetic");
    assert_eq!(case.tolerance.rtol, 0.001);
    assert_eq!(case.param_usize2("kernel").unwrap(), [2, 2]);
    assert_eq!(case.param_usize2("stride").unwrap(), [2, 1]);
    assert_eq!(case.labels("labels").unwrap(), vec![1, 0]);
    let y = case.tensor("x").unwrap().map(|v| v.max(0.0));
    case.compare("y", &y).unwrap();
    // No case for an op is an error, so a test over it cannot pass vacuously.
    assert!(g.load_cases(GoldenOp::Tanh).is_err());
}

fn golden_err(e: TensorError) -> String {
    match e {
        TensorError::Golden { case, reason } => format!("{case}: {reason}"),
        other => panic!("expected a Golden error, got {other:?}"),
    }
}

#[test]
fn unknown_op_is_an_error() {
    let dir = golden_dir(&manifest(&relu_case("mine", "softplus", "[2, 3]")));
    write_case_file(dir.path(), "mine", None, false);
    let msg = golden_err(Golden::open(dir.path()).unwrap_err());
    assert!(msg.contains("unknown op `softplus`"), "{msg}");
}

#[test]
fn missing_tensor_is_an_error() {
    let dir = golden_dir(&manifest(&relu_case("mine", "relu", "[2, 3]")));
    write_case_file(dir.path(), "mine", Some("grad_y"), false);
    let g = Golden::open(dir.path()).unwrap();
    let msg = golden_err(g.load_all().unwrap_err());
    assert!(msg.contains("mine") && msg.contains("`grad_y`"), "{msg}");
}

#[test]
fn missing_case_file_is_an_error() {
    let dir = golden_dir(&manifest(&relu_case("mine", "relu", "[2, 3]")));
    let g = Golden::open(dir.path()).unwrap();
    let msg = golden_err(g.load_cases(GoldenOp::Relu).unwrap_err());
    assert!(msg.contains("mine.safetensors"), "{msg}");
}

#[test]
fn shape_disagreeing_with_manifest_is_an_error() {
    let dir = golden_dir(&manifest(&relu_case("mine", "relu", "[3, 2]")));
    write_case_file(dir.path(), "mine", None, false);
    let g = Golden::open(dir.path()).unwrap();
    let msg = golden_err(g.case("mine").unwrap_err());
    assert!(msg.contains("`x`") && msg.contains("[3, 2]"), "{msg}");
}

#[test]
fn tensor_not_in_manifest_is_an_error() {
    let dir = golden_dir(&manifest(&relu_case("mine", "relu", "[2, 3]")));
    write_case_file(dir.path(), "mine", None, true);
    let msg = golden_err(Golden::open(dir.path()).unwrap().load_all().unwrap_err());
    assert!(msg.contains("`stray`"), "{msg}");
}

#[test]
fn malformed_manifests_are_errors() {
    let bad = [
        "not json".to_string(),
        r#"{"format": 2, "cases": []}"#.to_string(),
        manifest(&format!(
            "{},{}",
            relu_case("dup", "relu", "[2, 3]"),
            relu_case("dup", "relu", "[2, 3]")
        )),
        manifest(&relu_case("../escape", "relu", "[2, 3]")),
        // An output with no shape entry.
        manifest(
            &relu_case("mine", "relu", "[2, 3]")
                .replace(r#""outputs": ["y"]"#, r#""outputs": ["y", "z"]"#),
        ),
    ];
    for (i, text) in bad.iter().enumerate() {
        let dir = golden_dir(text);
        let err = Golden::open(dir.path()).unwrap_err();
        assert!(matches!(err, TensorError::Golden { .. }), "case {i}: {err}");
    }
    let empty = tempfile::tempdir().unwrap();
    let msg = golden_err(Golden::open(empty.path()).unwrap_err());
    assert!(msg.contains("FOVEA_GOLDEN_DIR"), "{msg}");
}

#[test]
fn op_names_round_trip() {
    for op in GoldenOp::ALL {
        assert_eq!(GoldenOp::from_name(op.as_str()), Some(op));
        assert_eq!(op.to_string(), op.as_str());
    }
    assert_eq!(GoldenOp::from_name("Conv2d"), None);
}
