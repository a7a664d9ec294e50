//! Finding a TrueType font for chart text (plotters draws text only with a registered font).

use std::sync::OnceLock;

/// Candidate font files, tried in order after `$FOVEA_FONT`.
const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The family name charts use for their text.
pub const FAMILY: &str = "sans-serif";

/// Registers a system font once; returns whether charts can draw text.
pub fn ensure_font() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let from_env = std::env::var("FOVEA_FONT").ok();
        let paths = from_env
            .iter()
            .map(String::as_str)
            .chain(CANDIDATES.iter().copied());
        for path in paths {
            if let Ok(bytes) = std::fs::read(path) {
                // Registered fonts must live for the whole process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, bytes)
                    .is_ok()
                {
                    return true;
                }
            }
        }
        false
    })
}
