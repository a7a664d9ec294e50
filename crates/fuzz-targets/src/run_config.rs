//! The `run_config` target: a run directory's `config.json`, as `lenet train --resume` reads it.

use lenet_app::config::RunConfig;

/// Parses the bytes as `config.json` (after the UTF-8 check reading it as text makes).
pub fn parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = RunConfig::from_json(text);
    }
}
