//! Obtaining verified dataset files from every reachable source.
//!
//! Sources are tried per file, in order:
//! 1. the cache directory ([`FetchOptions::data_dir`], by default `data/<dataset>` under the
//!    workspace, overridden by `--data-dir` or `FOVEA_DATA`; see [`resolve_data_dir`]);
//! 2. system directories (Debian's `dataset-fashion-mnist` installs
//!    `/usr/share/datasets/fashion-mnist/*-ubyte.gz`), copied into the cache directory;
//! 3. HTTP(S) mirrors through `ureq`, with connect and read timeouts and retries.
//!
//! Every file is verified (decompressed content against the published checksums) before use.
//! Copies and downloads are written under a temporary name in the cache directory and renamed
//! only after verification; a cached file that fails verification is recorded in the report
//! and replaced from the next source. When some file cannot be obtained, one
//! [`DatasetError::Unavailable`] lists every source tried for it and why each failed.

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;

use crate::dataset::find_file;
use crate::error::{Attempt, DatasetError, Result, Unavailable};
use crate::idx;
use crate::spec::{DatasetSpec, FileSpec};

/// Environment variable naming the data root (the directory holding `<dataset>/`).
pub const DATA_ENV: &str = "FOVEA_DATA";

/// Downloads larger than this are cut off (the largest published file is ~30 MB).
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// The cache directory for `spec`: `<root>/<dataset name>`, where the root is `explicit_root`
/// if given, else `$FOVEA_DATA` if set and non-empty, else `default_root` (the workspace's
/// `data/`).
pub fn resolve_data_dir(
    spec: &DatasetSpec,
    explicit_root: Option<&Path>,
    default_root: &Path,
) -> PathBuf {
    let root = match explicit_root {
        Some(r) => r.to_path_buf(),
        None => match std::env::var_os(DATA_ENV) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => default_root.to_path_buf(),
        },
    };
    root.join(spec.name)
}

/// Where to look for files and how to download them.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The cache directory: checked first, and where verified files are left.
    pub data_dir: PathBuf,
    /// System directories to check after the cache (defaults to the spec's).
    pub system_dirs: Vec<PathBuf>,
    /// Mirror base URLs, tried in order; `<base>/<name>.gz` is fetched (defaults to the spec's).
    pub mirrors: Vec<String>,
    /// Timeout for resolving and connecting.
    pub connect_timeout: Duration,
    /// Timeout for each read from the network.
    pub read_timeout: Duration,
    /// Extra attempts per mirror after a transport error.
    pub retries: u32,
    /// Pause before a retry (multiplied by the attempt number).
    pub retry_delay: Duration,
    /// A progress bar the library updates during downloads (length, position, message); the
    /// caller creates and draws it. `None` shows nothing.
    pub progress: Option<ProgressBar>,
}

impl FetchOptions {
    /// Defaults for `spec` with the given cache directory: the spec's system directories and
    /// mirrors, 10 s connect and 30 s read timeouts, 2 retries.
    pub fn new(spec: &DatasetSpec, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            system_dirs: spec.system_dirs.iter().map(PathBuf::from).collect(),
            mirrors: spec.mirrors.iter().map(|m| m.to_string()).collect(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 2,
            retry_delay: Duration::from_secs(1),
            progress: None,
        }
    }

    /// The same options without network sources.
    pub fn offline(mut self) -> Self {
        self.mirrors.clear();
        self
    }

    /// The same options with `bar` updated during downloads.
    pub fn with_progress(mut self, bar: ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }
}

/// Where a verified file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Already in the cache directory.
    Cache,
    /// Copied from this system file.
    System(PathBuf),
    /// Downloaded from this URL.
    Mirror(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cache => write!(f, "cache"),
            Self::System(p) => write!(f, "system copy {}", p.display()),
            Self::Mirror(u) => write!(f, "download {u}"),
        }
    }
}

/// One verified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// The standard name without `.gz`.
    pub name: &'static str,
    /// The verified file, in the cache directory.
    pub path: PathBuf,
    /// Where it came from.
    pub source: Source,
    /// Sources tried before the one that worked, and why each failed (e.g. a cached file whose
    /// checksum did not match: expected and found hash).
    pub rejected: Vec<Attempt>,
}

/// What [`fetch`] did, file by file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The dataset's name.
    pub dataset: &'static str,
    /// The cache directory holding the files.
    pub data_dir: PathBuf,
    /// One entry per file, in the order asked for.
    pub files: Vec<FetchedFile>,
}

/// Makes sure all four files of `spec` are in `opts.data_dir`, verified.
pub fn fetch(spec: &DatasetSpec, opts: &FetchOptions) -> Result<FetchReport> {
    let names = spec.files.map(|f| f.name);
    fetch_contents(spec, opts, &names).map(|(report, _)| report)
}

/// Like [`fetch`] for the named files only, also returning each file's verified, decompressed
/// IDX bytes (in the order of `names`), so that a load reads and hashes each file once.
pub fn fetch_contents(
    spec: &DatasetSpec,
    opts: &FetchOptions,
    names: &[&str],
) -> Result<(FetchReport, Vec<Vec<u8>>)> {
    let mut files = Vec::with_capacity(names.len());
    let mut contents = Vec::with_capacity(names.len());
    let mut failed = Vec::new();
    let mut unreachable = Vec::new();
    for &name in names {
        let Some(file) = spec.file(name) else {
            return Err(DatasetError::MissingFile {
                dir: opts.data_dir.clone(),
                name: format!("{name} (not a file of {})", spec.name),
            });
        };
        match obtain(file, opts, &mut unreachable) {
            Ok((fetched, bytes)) => {
                files.push(fetched);
                contents.push(bytes);
            }
            Err(attempts) => failed.push((name.to_owned(), attempts)),
        }
    }
    if !failed.is_empty() {
        return Err(DatasetError::Unavailable(Box::new(Unavailable {
            dataset: spec.name.to_owned(),
            data_dir: opts.data_dir.clone(),
            files: failed,
            hint: hint(spec, opts),
        })));
    }
    let report = FetchReport {
        dataset: spec.name,
        data_dir: opts.data_dir.clone(),
        files,
    };
    Ok((report, contents))
}

fn hint(spec: &DatasetSpec, opts: &FetchOptions) -> String {
    let mut s = String::from("to fix: ");
    if let Some(pkg) = spec.system_package {
        s += &format!("install the Debian package `{pkg}` (apt-get install {pkg}), or ");
    }
    s += &format!(
        "put the four files ({}, .gz or not) into {}",
        spec.files.map(|f| f.name).join(", "),
        opts.data_dir.display()
    );
    if !opts.mirrors.is_empty() {
        s += ", or retry when a mirror is reachable";
    }
    s
}

/// Reads and verifies a candidate file, returning its decompressed bytes.
fn verified(file: &FileSpec, path: &Path) -> Result<Vec<u8>> {
    let bytes = idx::read_idx_bytes(path)?;
    file.checksum.verify(&bytes, path)?;
    Ok(bytes)
}

fn attempt(source: impl std::fmt::Display, reason: impl std::fmt::Display) -> Attempt {
    let source = source.to_string();
    let reason = reason.to_string();
    // Errors name their file or URL; the attempt already does, so say it once.
    let prefix = format!("{source}: ");
    let mut rest = reason.as_str();
    while let Some(r) = rest.strip_prefix(&prefix) {
        rest = r;
    }
    Attempt {
        reason: rest.to_owned(),
        source,
    }
}

/// Tries every source for one file; on failure returns every attempt. `unreachable` collects
/// mirrors that could not be reached at all (`(base, file tried)`), which later files skip.
fn obtain(
    file: &FileSpec,
    opts: &FetchOptions,
    unreachable: &mut Vec<(String, String)>,
) -> Result<(FetchedFile, Vec<u8>), Vec<Attempt>> {
    let mut attempts = Vec::new();
    let mut bad_cached = Vec::new();
    let done = |path: PathBuf, source, bytes, rejected: Vec<Attempt>, bad_cached: &[PathBuf]| {
        // A cached file that failed verification and was not overwritten by the rename is
        // removed, so that it is not tried (and reported) again next time.
        for bad in bad_cached.iter().filter(|b| **b != path) {
            let _ = fs::remove_file(bad);
        }
        let fetched = FetchedFile {
            name: file.name,
            path,
            source,
            rejected,
        };
        Ok((fetched, bytes))
    };

    // 1. The cache directory.
    let candidates = [format!("{}.gz", file.name), file.name.to_owned()];
    let mut any_cached = false;
    for path in candidates
        .iter()
        .map(|c| opts.data_dir.join(c))
        .filter(|p| p.is_file())
    {
        any_cached = true;
        match verified(file, &path) {
            Ok(bytes) => return done(path, Source::Cache, bytes, attempts, &bad_cached),
            Err(e) => {
                let a = attempt(path.display(), e);
                attempts.push(attempt(
                    a.source,
                    format!("cached file rejected: {}", a.reason),
                ));
                bad_cached.push(path);
            }
        }
    }
    if !any_cached {
        let shown = opts.data_dir.join(format!("{}[.gz]", file.name));
        attempts.push(attempt(shown.display(), "not present"));
    }

    // 2. System directories: verify, then copy into the cache under a temporary name.
    for dir in &opts.system_dirs {
        let Some(src) = find_file(dir, file.name) else {
            let why = if dir.is_dir() {
                "file not present"
            } else {
                "directory not present"
            };
            attempts.push(attempt(
                dir.join(format!("{}[.gz]", file.name)).display(),
                why,
            ));
            continue;
        };
        let bytes = match verified(file, &src) {
            Ok(b) => b,
            Err(e) => {
                attempts.push(attempt(src.display(), e));
                continue;
            }
        };
        let file_name = src
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| file.name.into());
        let dest = opts.data_dir.join(file_name);
        match copy_atomically(&src, &dest, &opts.data_dir) {
            Ok(()) => return done(dest, Source::System(src), bytes, attempts, &bad_cached),
            Err(e) => attempts.push(attempt(
                src.display(),
                format!("verified, but copying failed: {e}"),
            )),
        }
    }

    // 3. Mirrors.
    if !opts.mirrors.is_empty() {
        let agent = agent(opts);
        for base in &opts.mirrors {
            let url = format!("{}/{}.gz", base.trim_end_matches('/'), file.name);
            if let Some((_, why)) = unreachable.iter().find(|(b, _)| b == base) {
                attempts.push(attempt(
                    &url,
                    format!("skipped: unreachable when fetching {why}"),
                ));
                continue;
            }
            let dest = opts.data_dir.join(format!("{}.gz", file.name));
            match download_verified(&agent, &url, file, &dest, opts) {
                Ok(bytes) => return done(dest, Source::Mirror(url), bytes, attempts, &bad_cached),
                Err(e) => {
                    if let DatasetError::Download { reached: false, .. } = &e {
                        unreachable.push((base.clone(), file.name.to_owned()));
                    }
                    attempts.push(attempt(&url, e));
                }
            }
        }
    }
    Err(attempts)
}

/// A temporary file in `dir` (created if needed), deleted on drop unless persisted. It is
/// readable by everyone, as a dataset file should be (temporary files default to owner-only).
fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    fs::create_dir_all(dir).map_err(|e| DatasetError::io(dir, e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".fovea-").suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder
        .tempfile_in(dir)
        .map_err(|e| DatasetError::io(dir, e))
}

fn copy_atomically(src: &Path, dest: &Path, dir: &Path) -> Result<()> {
    let mut tmp = temp_in(dir)?;
    let mut input = fs::File::open(src).map_err(|e| DatasetError::io(src, e))?;
    io::copy(&mut input, tmp.as_file_mut()).map_err(|e| DatasetError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| DatasetError::io(tmp.path(), e))?;
    tmp.persist(dest)
        .map_err(|e| DatasetError::io(dest, e.error))?;
    Ok(())
}

fn agent(opts: &FetchOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_resolve(Some(opts.connect_timeout))
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .timeout_recv_response(Some(opts.read_timeout))
        .user_agent(concat!("fovea-datasets/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Downloads `url` into a temporary file next to `dest` (with retries), verifies its
/// decompressed content, and only then renames it to `dest`.
fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    file: &FileSpec,
    dest: &Path,
    opts: &FetchOptions,
) -> Result<Vec<u8>> {
    let mut tmp = temp_in(&opts.data_dir)?;
    let mut last_err = String::new();
    let mut reached = false;
    let mut ok = false;
    for attempt_no in 0..=opts.retries {
        if attempt_no > 0 {
            std::thread::sleep(opts.retry_delay * attempt_no);
        }
        let f = tmp.as_file_mut();
        if let Err(e) = f.set_len(0).and_then(|_| f.rewind()) {
            return Err(DatasetError::io(tmp.path(), e));
        }
        match download_once(agent, url, f, file.name, opts.progress.as_ref()) {
            Ok(()) => {
                ok = true;
                break;
            }
            Err((e, got_response)) => {
                reached |= got_response;
                last_err = format!("{e} (after {} attempt(s))", attempt_no + 1);
            }
        }
    }
    if !ok {
        return Err(DatasetError::Download {
            url: url.to_owned(),
            reason: last_err,
            reached,
        });
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| DatasetError::io(tmp.path(), e))?;
    // Verify under the temporary name, so the error names the URL; the temp file is deleted on
    // drop when verification fails.
    let bytes = idx::decode_idx_reader(
        fs::File::open(tmp.path()).map_err(|e| DatasetError::io(tmp.path(), e))?,
        Path::new(url),
    )?;
    file.checksum.verify(&bytes, Path::new(url))?;
    tmp.persist(dest)
        .map_err(|e| DatasetError::io(dest, e.error))?;
    Ok(bytes)
}

fn download_once(
    agent: &ureq::Agent,
    url: &str,
    out: &mut fs::File,
    name: &str,
    progress: Option<&ProgressBar>,
) -> std::result::Result<(), (String, bool)> {
    let response = agent.get(url).call().map_err(|e| {
        // An HTTP status means the server answered: the mirror is reachable.
        let answered = matches!(e, ureq::Error::StatusCode(_));
        (e.to_string(), answered)
    })?;
    let fail = |msg: String| (msg, true);
    let body = response.into_body();
    let expected = body.content_length();
    if let Some(pb) = progress {
        pb.set_length(expected.unwrap_or(0));
        pb.set_position(0);
        pb.set_message(name.to_owned());
    }
    let mut reader = body.into_reader().take(MAX_DOWNLOAD_BYTES + 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(format!("connection failed after {total} bytes: {e}"))),
        };
        out.write_all(&buf[..n])
            .map_err(|e| fail(format!("writing the temporary file: {e}")))?;
        total += n as u64;
        if let Some(pb) = progress {
            pb.inc(n as u64);
        }
    }
    if total > MAX_DOWNLOAD_BYTES {
        return Err(fail(format!(
            "response larger than {MAX_DOWNLOAD_BYTES} bytes"
        )));
    }
    match expected {
        Some(len) if len != total => Err(fail(format!(
            "connection closed early: expected {len} bytes, received {total}"
        ))),
        _ => Ok(()),
    }
}
