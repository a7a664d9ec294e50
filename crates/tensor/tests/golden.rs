//! The golden loader: every shipped case of both shipped sets loads and matches its manifest;
//! each set has the ops it is expected to; a second directory in the same format works
//! unchanged (ops included that no crate replays); manifest/file disagreements are errors,
//! never skips.
#![cfg(feature = "golden")]

use std::collections::BTreeSet;
use std::path::Path;
use tensor::golden::{self, Golden, GoldenTensor};
use tensor::{NamedTensors, Tensor, TensorError};

/// The ops the public set (`../shared/golden`) must have cases of.
const PUBLIC_OPS: [&str; 10] = [
    "conv2d",
    "avg_pool2d",
    "max_pool2d",
    "linear",
    "sigmoid",
    "relu",
    "tanh",
    "cross_entropy",
    "optimizer",
    "lenet_train_steps",
];

/// The ops the CNN set (`../shared/golden-cnn`) must have cases of.
const CNN_OPS: [&str; 4] = [
    "batch_norm2d",
    "adaptive_avg_pool2d",
    "cat",
    "model_train_steps",
];

/// A shipped set by its place beside the workspace, whatever `FOVEA_GOLDEN_DIR` says.
fn shipped(dir: &str) -> Golden {
    Golden::open(golden::workspace_root().unwrap().join(dir)).unwrap()
}

#[test]
fn default_dirs_are_both_shared_sets_next_to_the_workspace() {
    let root = golden::workspace_root().unwrap();
    assert!(root.join("Cargo.toml").is_file());
    assert!(root.join("crates/tensor").is_dir());
    assert_eq!(
        golden::DEFAULT_DIRS,
        ["../shared/golden", "../shared/golden-cnn"]
    );
    if std::env::var_os(golden::GOLDEN_DIR_ENV).is_none() {
        assert_eq!(
            golden::default_dirs().unwrap(),
            vec![
                root.join("../shared/golden"),
                root.join("../shared/golden-cnn")
            ]
        );
    }
}

#[test]
fn golden_dir_lists_several_directories() {
    use std::ffi::OsStr;
    use std::path::PathBuf;
    let root = golden::workspace_root().unwrap();
    let defaults = vec![
        root.join("../shared/golden"),
        root.join("../shared/golden-cnn"),
    ];
    assert_eq!(golden::dirs_from(None).unwrap(), defaults);
    assert_eq!(golden::dirs_from(Some(OsStr::new(""))).unwrap(), defaults);
    assert_eq!(golden::dirs_from(Some(OsStr::new("::"))).unwrap(), defaults);
    assert_eq!(
        golden::dirs_from(Some(OsStr::new("/a/one:/b/two"))).unwrap(),
        vec![PathBuf::from("/a/one"), PathBuf::from("/b/two")]
    );
    assert_eq!(
        golden::dirs_from(Some(OsStr::new("/a/one::rel/two:"))).unwrap(),
        vec![PathBuf::from("/a/one"), root.join("rel/two")]
    );
}

#[test]
fn each_shipped_set_has_exactly_its_expected_ops() {
    for (dir, expected) in [
        ("../shared/golden", &PUBLIC_OPS[..]),
        ("../shared/golden-cnn", &CNN_OPS[..]),
    ] {
        let g = shipped(dir);
        let want: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(g.ops(), want, "{dir}: every op has at least one case");
        for op in expected {
            assert!(!g.case_names_for(op).is_empty(), "{dir}: {op}");
        }
    }
}

#[test]
fn every_shipped_case_of_both_sets_loads_and_matches_its_manifest() {
    let mut total = 0;
    for dir in golden::DEFAULT_DIRS {
        let g = shipped(dir);
        let cases = g.load_all().unwrap();
        assert!(!cases.is_empty(), "{dir}");
        assert_eq!(cases.len(), g.case_names().len(), "{dir}");
        assert!(cases.iter().all(|c| c.dir == g.dir()), "{dir}");
        check_cases(&cases);
        total += cases.len();
    }
    // The free functions read every default directory (both sets unless FOVEA_GOLDEN_DIR says
    // otherwise).
    let all = golden::load_all().unwrap();
    if std::env::var_os(golden::GOLDEN_DIR_ENV).is_none() {
        assert_eq!(all.len(), total);
    }
    check_cases(&all);
}

/// Every case's tensors are those of its manifest entry, finite, with a positive tolerance.
fn check_cases(cases: &[golden::GoldenCase]) {
    for case in cases {
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
}

#[test]
fn the_cnn_set_loads_with_its_own_ops_and_int64_scalars() {
    let cnn = shipped("../shared/golden-cnn");
    let bn = cnn.case("batch_norm2d_train").unwrap();
    assert_eq!(bn.op, "batch_norm2d");
    assert!(bn.param_bool("training").unwrap());
    let model = cnn.load_cases("model_train_steps").unwrap();
    assert_eq!(model.len(), 2);
    let mut scalars = 0;
    for case in &model {
        assert!(case.param_usize("steps").unwrap() > 0, "{}", case.name);
        for name in case.names() {
            if name.ends_with("num_batches_tracked") {
                let (shape, tracked) = case.i64(name).unwrap();
                assert!(shape.dims().is_empty(), "{}/{name}: a scalar", case.name);
                assert_eq!(tracked.len(), 1, "{}/{name}", case.name);
                scalars += 1;
            }
        }
    }
    assert!(
        scalars > 0,
        "resnet_small's batch norms track their batches"
    );
    // The public set has none of these ops, and that is no error.
    let public = shipped("../shared/golden");
    for op in CNN_OPS {
        assert!(public.load_cases(op).unwrap().is_empty(), "{op}");
    }
    for op in PUBLIC_OPS {
        assert!(cnn.load_cases(op).unwrap().is_empty(), "{op}");
    }
}

#[test]
fn load_cases_by_op_and_typed_params() {
    let convs = golden::load_cases("conv2d").unwrap();
    assert!(convs.iter().all(|c| c.op == "conv2d"));
    let c1 = convs.iter().find(|c| c.name == "conv2d_lenet_c1").unwrap();
    assert_eq!(c1.param_usize2("stride").unwrap(), [1, 1]);
    assert_eq!(c1.param_usize2("padding").unwrap(), [2, 2]);
    assert_eq!(c1.param_usize("groups").unwrap(), 1);
    assert_eq!(c1.tensor("x").unwrap().dims(), &[3, 1, 28, 28]);
    assert!(c1.param_str("stride").is_err());
    assert!(c1.param("nope").is_err());

    let g = shipped("../shared/golden");
    let ce = g.case("cross_entropy").unwrap();
    assert_eq!(ce.op, "cross_entropy");
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
    let relu = golden::load_cases("relu").unwrap().remove(0);
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
    assert_eq!(g.case_names_for("relu"), vec!["mine"]);
    assert!(g.case_names_for("tanh").is_empty());
    assert_eq!(g.ops(), BTreeSet::from(["relu"]));
    let cases = g.load_cases("relu").unwrap();
    let case = &cases[0];
    assert_eq!(case.note, "synthetic");
    assert_eq!(case.op, "relu");
    assert_eq!(case.dir, dir.path());
    assert_eq!(case.tolerance.rtol, 0.001);
    assert_eq!(case.param_usize2("kernel").unwrap(), [2, 2]);
    assert_eq!(case.param_usize2("stride").unwrap(), [2, 1]);
    assert_eq!(case.labels("labels").unwrap(), vec![1, 0]);
    let y = case.tensor("x").unwrap().map(|v| v.max(0.0));
    case.compare("y", &y).unwrap();
    // A directory without cases of an op is no error: another directory may hold them (a
    // replay that finds none in any directory fails in test-support's harness).
    assert!(g.load_cases("tanh").unwrap().is_empty());
}

#[test]
fn an_op_no_crate_knows_loads_unchanged() {
    let dir = golden_dir(&manifest(&relu_case("mine", "softplus", "[2, 3]")));
    write_case_file(dir.path(), "mine", None, false);
    let g = Golden::open(dir.path()).unwrap();
    assert_eq!(g.case_names_for("softplus"), vec!["mine"]);
    let case = g.load_cases("softplus").unwrap().remove(0);
    assert_eq!(case.op, "softplus");
    assert!(g.load_cases("relu").unwrap().is_empty());
}

fn golden_err(e: TensorError) -> String {
    match e {
        TensorError::Golden { case, reason } => format!("{case}: {reason}"),
        other => panic!("expected a Golden error, got {other:?}"),
    }
}

#[test]
fn an_op_name_that_is_not_snake_case_is_an_error() {
    for bad in ["Conv2d", "", "max pool", "2d", "relu/x"] {
        let dir = golden_dir(&manifest(&relu_case("mine", bad, "[2, 3]")));
        write_case_file(dir.path(), "mine", None, false);
        let msg = golden_err(Golden::open(dir.path()).unwrap_err());
        assert!(msg.contains(&format!("op `{bad}`")), "{msg}");
    }
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
    let msg = golden_err(g.load_cases("relu").unwrap_err());
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
