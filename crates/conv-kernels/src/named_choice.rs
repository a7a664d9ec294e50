//! Settings chosen by name (`--device` and `FOVEA_DEVICE`, `FOVEA_GPU_KERNELS`): the one name
//! lookup, parser and error text over a setting's `ALL` table of `(value, name)` pairs.

use crate::error::{KernelError, Result, spec_err};

/// The name of `value` in `all` (`fallback` if the table lacks it).
pub(crate) fn name_of<T: Copy + PartialEq>(
    all: &[(T, &'static str)],
    value: T,
    fallback: &'static str,
) -> &'static str {
    all.iter()
        .find(|(v, _)| *v == value)
        .map_or(fallback, |(_, n)| n)
}

/// `auto, cpu, gpu or reference`: the names of `all`, as error messages list them.
fn expected<T>(all: &[(T, &'static str)]) -> String {
    let names: Vec<&str> = all.iter().map(|(_, n)| *n).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The value `text` names in `all`, case and surrounding blanks ignored, the empty string
/// being `T::default()`; `None` for an unknown name.
fn lookup<T: Copy + Default>(all: &[(T, &'static str)], text: &str) -> Option<T> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Some(T::default());
    }
    all.iter().find(|(_, n)| *n == t).map(|(v, _)| *v)
}

/// Parses `text` against `all` ([`lookup`]); an unknown name is an `InvalidSpec` of `op`
/// saying `unknown {label} "text": expected ...`.
pub(crate) fn parse<T: Copy + Default>(
    all: &[(T, &'static str)],
    op: &'static str,
    label: &str,
    text: &str,
) -> Result<T> {
    lookup(all, text).ok_or_else(|| {
        spec_err(
            op,
            format!("unknown {label} {text:?}: expected {}", expected(all)),
        )
    })
}

/// The error for environment variable `var` holding `value` that is not one of `all`'s names.
pub(crate) fn env_error<T>(
    all: &[(T, &'static str)],
    op: &'static str,
    var: &str,
    value: impl std::fmt::Debug,
) -> KernelError {
    spec_err(
        op,
        format!("{var}={value:?} not understood: expected {}", expected(all)),
    )
}

/// The choice named by environment variable `var`: `T::default()` when it is unset or blank,
/// an [`env_error`] naming the variable when it is not one of `all`'s names.
pub(crate) fn from_env<T: Copy + Default>(
    all: &[(T, &'static str)],
    op: &'static str,
    var: &str,
) -> Result<T> {
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(T::default()),
        Err(std::env::VarError::NotUnicode(v)) => Err(env_error(all, op, var, &v)),
        Ok(v) => lookup(all, &v).ok_or_else(|| env_error(all, op, var, &v)),
    }
}
