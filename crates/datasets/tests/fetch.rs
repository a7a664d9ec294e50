//! Fetching: cache, system directory and mirrors, all local. Mirrors are HTTP servers on
//! 127.0.0.1 started by the tests; no test touches the network.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datasets::checksum::md5_hex;
use datasets::{
    DatasetError, DatasetSpec, FetchOptions, STANDARD_FILES, Source, Split, fetch, resolve_data_dir,
};
use fovea_test_support::idx::{gz, spec_for, synthetic_files, write};

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Serves the file.
    Normal,
    /// Announces the full length, sends half, closes the connection.
    CloseMidFile,
    /// Serves a valid gzip IDX file with different content.
    WrongBytes,
    /// Answers 404.
    NotFound,
}

struct Server {
    base: String,
    hits: Arc<AtomicUsize>,
}

/// Starts a one-thread HTTP/1.1 server on 127.0.0.1 serving `/data/<name>.gz`.
fn serve(mode: Mode, good: &[Vec<u8>; 4], wrong: &[Vec<u8>; 4]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    let mut files = HashMap::new();
    for (i, name) in STANDARD_FILES.iter().enumerate() {
        let body = match mode {
            Mode::WrongBytes => gz(&wrong[i]),
            _ => gz(&good[i]),
        };
        files.insert(format!("/data/{name}.gz"), body);
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = handle(stream, mode, &files);
        }
    });
    Server {
        base: format!("http://127.0.0.1:{port}/data"),
        hits,
    }
}

fn handle(stream: TcpStream, mode: Mode, files: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut out = stream;
    let Some(body) = files.get(&path).filter(|_| !matches!(mode, Mode::NotFound)) else {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    match mode {
        Mode::CloseMidFile => {
            out.write_all(&body[..body.len() / 2])?;
            out.flush()?;
            out.shutdown(Shutdown::Both)?;
        }
        _ => out.write_all(body)?,
    }
    Ok(())
}

fn opts(spec: &DatasetSpec, data_dir: &Path) -> FetchOptions {
    let mut o = FetchOptions::new(spec, data_dir);
    o.retries = 1;
    o.retry_delay = Duration::from_millis(5);
    o.connect_timeout = Duration::from_secs(5);
    o.read_timeout = Duration::from_secs(5);
    o
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn gz_names() -> Vec<String> {
    let mut v: Vec<String> = STANDARD_FILES.iter().map(|n| format!("{n}.gz")).collect();
    v.sort();
    v
}

#[test]
fn download_skips_broken_mirrors_and_leaves_verified_files() {
    let good = synthetic_files(0);
    let wrong = synthetic_files(99);
    let closing = serve(Mode::CloseMidFile, &good, &wrong);
    let bad = serve(Mode::WrongBytes, &good, &wrong);
    let missing = serve(Mode::NotFound, &good, &wrong);
    let normal = serve(Mode::Normal, &good, &wrong);
    let mirrors = [&closing, &bad, &missing, &normal]
        .map(|s| s.base.clone())
        .to_vec();
    let spec = spec_for(&good, mirrors, vec![]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("synthetic");
    let bar = indicatif::ProgressBar::hidden();
    let o = opts(spec, &data_dir).with_progress(bar.clone());

    let report = fetch(spec, &o).expect("the normal mirror works");
    assert_eq!(report.files.len(), 4);
    for f in &report.files {
        assert_eq!(
            f.source,
            Source::Mirror(format!("{}/{}.gz", normal.base, f.name))
        );
        let reasons: Vec<&str> = f.rejected.iter().map(|a| a.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert_eq!(reasons[0], "not present");
        assert!(reasons[1].contains("after 2 attempt(s)"), "{}", reasons[1]);
        assert!(reasons[2].contains("checksum mismatch"), "{}", reasons[2]);
        assert!(reasons[3].contains("404"), "{}", reasons[3]);
    }
    // Two attempts (one retry) per file against the closing server.
    assert_eq!(closing.hits.load(Ordering::SeqCst), 8);
    assert_eq!(bad.hits.load(Ordering::SeqCst), 4);
    // Only the verified files, under their final names: no partial or rejected download left.
    assert_eq!(dir_entries(&data_dir), gz_names());
    assert!(bar.position() > 0, "the progress bar was driven");

    // Next time everything comes from the cache, and loads.
    let report = fetch(spec, &o).expect("cached");
    assert!(
        report
            .files
            .iter()
            .all(|f| f.source == Source::Cache && f.rejected.is_empty())
    );
    assert_eq!(normal.hits.load(Ordering::SeqCst), 4);
    let train = spec
        .load(&o.clone().offline(), Split::Train)
        .expect("train loads");
    assert_eq!(train.len(), 12);
    assert_eq!(train.class_names(), ["a", "b", "c", "d"]);
    assert_eq!(
        spec.load(&o.offline(), Split::Test)
            .expect("test loads")
            .len(),
        5
    );
}

#[test]
fn no_working_source_lists_every_source_tried() {
    let good = synthetic_files(0);
    let wrong = synthetic_files(7);
    let closing = serve(Mode::CloseMidFile, &good, &wrong);
    let bad = serve(Mode::WrongBytes, &good, &wrong);
    let tmp = tempfile::tempdir().expect("tempdir");
    let no_system = tmp.path().join("no-such-system-dir");
    let spec = spec_for(
        &good,
        vec![closing.base.clone(), bad.base.clone()],
        vec![no_system.clone()],
    );
    let data_dir = tmp.path().join("data");
    let err = fetch(spec, &opts(spec, &data_dir)).expect_err("nothing works");
    let DatasetError::Unavailable(report) = &err else {
        panic!("expected Unavailable, got {err}");
    };
    assert_eq!(report.files.len(), 4, "every file is listed");
    for (name, attempts) in &report.files {
        let sources: Vec<&str> = attempts.iter().map(|a| a.source.as_str()).collect();
        assert_eq!(sources.len(), 4, "{sources:?}");
        assert!(sources[0].starts_with(&data_dir.display().to_string()));
        assert!(sources[1].starts_with(&no_system.display().to_string()));
        assert_eq!(sources[2], format!("{}/{name}.gz", closing.base));
        assert_eq!(sources[3], format!("{}/{name}.gz", bad.base));
        assert_eq!(attempts[1].reason, "directory not present");
        assert!(
            attempts[3].reason.contains("expected"),
            "{}",
            attempts[3].reason
        );
    }
    let msg = err.to_string();
    assert!(
        msg.contains("to fix") && msg.contains(&data_dir.display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&closing.base) && msg.contains(&bad.base),
        "{msg}"
    );
    // Wrong bytes were never stored.
    assert!(
        dir_entries(&data_dir).is_empty(),
        "{:?}",
        dir_entries(&data_dir)
    );
}

#[test]
fn cached_file_failing_verification_is_reported_and_replaced() {
    let good = synthetic_files(0);
    let wrong = synthetic_files(5);
    let tmp = tempfile::tempdir().expect("tempdir");
    let system = tmp.path().join("system");
    for (i, name) in STANDARD_FILES.iter().enumerate() {
        write(&system, &format!("{name}.gz"), &gz(&good[i]));
    }
    let spec = spec_for(&good, vec![], vec![system.clone()]);
    let data_dir = tmp.path().join("data");
    // A raw cached file with the wrong content.
    let bad_cached = write(&data_dir, "train-images-idx3-ubyte", &wrong[0]);

    let report = fetch(spec, &opts(spec, &data_dir)).expect("system dir works");
    let first = &report.files[0];
    assert_eq!(first.name, "train-images-idx3-ubyte");
    assert_eq!(
        first.source,
        Source::System(system.join("train-images-idx3-ubyte.gz"))
    );
    assert_eq!(first.rejected.len(), 1);
    let why = &first.rejected[0].reason;
    assert!(why.contains("checksum mismatch"), "{why}");
    assert!(
        why.contains(&md5_hex(&good[0])) && why.contains(&md5_hex(&wrong[0])),
        "{why}"
    );
    assert_eq!(first.rejected[0].source, bad_cached.display().to_string());
    // The rejected file is gone; the four verified copies are in the data directory.
    assert_eq!(dir_entries(&data_dir), gz_names());
    for f in &report.files[1..] {
        assert!(matches!(f.source, Source::System(_)));
    }
}

#[test]
fn checksum_mismatch_is_an_error_and_the_file_is_not_used() {
    let good = synthetic_files(0);
    let wrong = synthetic_files(3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let system = tmp.path().join("system");
    for (i, name) in STANDARD_FILES.iter().enumerate() {
        write(&system, name, &wrong[i]);
    }
    let spec = spec_for(&good, vec![], vec![system.clone()]);
    let data_dir = tmp.path().join("data");
    let err = spec
        .load(&opts(spec, &data_dir), Split::Train)
        .expect_err("mismatch");
    let DatasetError::Unavailable(report) = &err else {
        panic!("expected Unavailable, got {err}");
    };
    assert_eq!(report.files.len(), 2, "only the train files were asked for");
    let reason = &report.files[0].1[1].reason;
    assert!(reason.contains("MD5 checksum mismatch"), "{reason}");
    assert!(dir_entries(&data_dir).is_empty(), "nothing copied");

    let err = spec
        .load_from_dir(&system, Split::Test)
        .expect_err("mismatch");
    match err {
        DatasetError::ChecksumMismatch {
            expected, found, ..
        } => {
            assert_eq!(expected, md5_hex(&good[2]));
            assert_eq!(found, md5_hex(&wrong[2]));
        }
        other => panic!("expected ChecksumMismatch, got {other}"),
    }
}

#[test]
fn system_copy_then_cache() {
    let good = synthetic_files(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let system = tmp.path().join("system");
    for (i, name) in STANDARD_FILES.iter().enumerate() {
        write(&system, &format!("{name}.gz"), &gz(&good[i]));
    }
    let spec = spec_for(&good, vec![], vec![system.clone()]);
    let data_dir = tmp.path().join("data");
    let o = opts(spec, &data_dir);
    let r = fetch(spec, &o).expect("system");
    assert!(
        r.files
            .iter()
            .all(|f| matches!(f.source, Source::System(_)))
    );
    let r = fetch(spec, &o).expect("cache");
    assert!(r.files.iter().all(|f| f.source == Source::Cache));
    let ds = spec
        .load_from_dir(&data_dir, Split::Train)
        .expect("loads from the cache dir");
    assert_eq!(ds.class_counts(), vec![3, 3, 3, 3]);
}

#[test]
fn data_dir_resolution() {
    let spec = &datasets::FashionMnist::SPEC;
    assert_eq!(
        resolve_data_dir(spec, Some(Path::new("/x")), Path::new("/default")),
        PathBuf::from("/x/fashion-mnist")
    );
    let resolved = resolve_data_dir(spec, None, Path::new("/default"));
    match std::env::var_os("FOVEA_DATA") {
        Some(v) if !v.is_empty() => assert_eq!(resolved, PathBuf::from(v).join("fashion-mnist")),
        _ => assert_eq!(resolved, PathBuf::from("/default/fashion-mnist")),
    }
    assert!(DatasetSpec::by_name("mnist").is_ok());
    assert!(matches!(
        DatasetSpec::by_name("cifar"),
        Err(DatasetError::UnknownDataset { .. })
    ));
}

#[test]
fn unreachable_mirror_is_tried_once_then_skipped() {
    let good = synthetic_files(2);
    // A port with nothing listening: connection refused.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "http://127.0.0.1:{}/data",
            l.local_addr().expect("addr").port()
        )
    };
    let normal = serve(Mode::Normal, &good, &good);
    let spec = spec_for(&good, vec![dead.clone(), normal.base.clone()], vec![]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = fetch(spec, &opts(spec, tmp.path())).expect("second mirror works");
    let first = &report.files[0].rejected[1];
    assert_eq!(first.source, format!("{dead}/train-images-idx3-ubyte.gz"));
    assert!(
        first.reason.contains("after 2 attempt(s)"),
        "{}",
        first.reason
    );
    assert!(
        !first.reason.contains(&dead),
        "the URL is not repeated: {}",
        first.reason
    );
    for f in &report.files[1..] {
        assert!(
            f.rejected[1].reason.starts_with("skipped: unreachable"),
            "{}",
            f.rejected[1].reason
        );
    }
}
