//! Checksums of decompressed IDX content: MD5 and SHA-256, as lowercase hex.

use std::path::Path;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::{DatasetError, Result};

/// Published hashes of one file's decompressed content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    /// MD5, lowercase hex.
    pub md5: &'static str,
    /// SHA-256, lowercase hex, where one is published.
    pub sha256: Option<&'static str>,
}

impl Checksum {
    /// Checks `bytes` against every published hash. `path` names the file in the error, which
    /// carries the expected and found hash.
    pub fn verify(&self, bytes: &[u8], path: &Path) -> Result<()> {
        // MD5 and SHA-256 run side by side: together they are most of a load's time.
        let (md5, sha) = std::thread::scope(|s| {
            let sha = self.sha256.map(|_| s.spawn(|| sha256_hex(bytes)));
            let md5 = md5_hex(bytes);
            (md5, sha.map(|h| h.join()))
        });
        if md5 != self.md5 {
            return Err(mismatch(path, "MD5", self.md5, md5));
        }
        if let (Some(expected), Some(found)) = (self.sha256, sha) {
            // A panicking hash thread cannot happen short of a bug; treat it as a mismatch.
            let found = found.unwrap_or_else(|_| String::from("<hash thread failed>"));
            if found != expected {
                return Err(mismatch(path, "SHA-256", expected, found));
            }
        }
        Ok(())
    }
}

fn mismatch(path: &Path, algorithm: &'static str, expected: &str, found: String) -> DatasetError {
    DatasetError::ChecksumMismatch {
        path: path.into(),
        algorithm,
        expected: expected.to_owned(),
        found,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// MD5 of `bytes`, lowercase hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verify_reports_expected_and_found() {
        let good = Checksum {
            md5: "900150983cd24fb0d6963f7d28e17f72",
            sha256: Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        };
        assert!(good.verify(b"abc", Path::new("x")).is_ok());
        let err = good.verify(b"abd", Path::new("x")).unwrap_err();
        match err {
            DatasetError::ChecksumMismatch {
                algorithm,
                expected,
                found,
                ..
            } => {
                assert_eq!(algorithm, "MD5");
                assert_eq!(expected, good.md5);
                assert_eq!(found, md5_hex(b"abd"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let bad_sha = Checksum {
            sha256: Some("00"),
            ..good
        };
        assert!(matches!(
            bad_sha.verify(b"abc", Path::new("x")),
            Err(DatasetError::ChecksumMismatch {
                algorithm: "SHA-256",
                ..
            })
        ));
    }
}
