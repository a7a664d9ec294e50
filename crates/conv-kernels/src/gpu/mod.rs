//! The wgpu backend's shared machinery: the [`GpuContext`] (adapter, device, queue), the
//! pipeline cache with specialisation constants, the buffer pool and the recorder that batches
//! dispatches. The op kernels live in each op's folder (`ops/<op>/gpu.rs`, with the shader
//! `shaders/<op>.wgsl` loaded through `include_str!`) as implementations of the op's kernel
//! trait for `Arc<GpuContext>`.
//!
//! Tensors stay in pooled GPU buffers between ops; dispatches are recorded into one pending
//! compute pass and submitted only when something is read back (or after many dispatches).
//! Kernels never use float atomics, so results are deterministic on a given adapter.
//!
//! Two kernel families for matmul and conv2d, chosen once per context ([`GpuKernels`]):
//! - flat (software adapters such as llvmpipe, and on request): no workgroup memory and no
//!   barriers (barriers are coroutines on llvmpipe), register blocking instead: conv2d is a
//!   direct "implicit GEMM" that keeps a channels × positions block per invocation and reuses
//!   each loaded input row segment for every kernel column; matmul keeps an 8 × 8 block.
//! - tiled (hardware GPUs): classic workgroup-memory GEMM, a 64 × 64 output tile per
//!   256-invocation workgroup (4 × 4 per invocation) over K-tiles of 16; conv2d forward and both
//!   gradients are implicit GEMMs whose tile loaders do the im2col indexing.

pub(crate) mod context;
pub(crate) mod multi_tensor;
pub(crate) mod pipeline;
pub(crate) mod pool;

pub use context::{CommandStats, GpuContext, GpuInfo, GpuKernels, GpuOptions, TransferStats};
pub use pool::PoolStats;

/// A pipeline specialisation: named `u32` constants, prepended to the shader as WGSL `const`
/// declarations and usable as `//#unroll` counts.
pub(crate) type Consts = Vec<(&'static str, usize)>;

/// Builds a specialisation from name/value pairs.
pub(crate) fn consts(pairs: &[(&'static str, usize)]) -> Consts {
    pairs.to_vec()
}

/// The WGSL `const` declarations of a specialisation.
pub(crate) fn const_decls(c: &[(&'static str, usize)]) -> String {
    c.iter()
        .map(|(k, v)| format!("const {k}: u32 = {v}u;\n"))
        .collect()
}

/// Expands `//#unroll VAR COUNT` … `//#end` blocks (nestable; COUNT a number or a name from
/// `consts`), repeating the body with `$VAR` replaced by `0u`, `1u`, …. Fully unrolled blocks
/// index their private arrays with constants, which every compiler keeps in registers
/// (llvmpipe otherwise spills them to memory).
pub(crate) fn expand_unrolls(src: &str, consts: &[(&str, usize)]) -> Result<String, String> {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = String::with_capacity(src.len() * 4);
    expand(&lines, consts, &[], &mut out)?;
    Ok(out)
}

fn expand(
    lines: &[&str],
    consts: &[(&str, usize)],
    vars: &[(String, usize)],
    out: &mut String,
) -> Result<(), String> {
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if let Some(rest) = t.strip_prefix("//#unroll ") {
            let mut it = rest.split_whitespace();
            let (Some(var), Some(count)) = (it.next(), it.next()) else {
                return Err(format!("bad unroll line: {t}"));
            };
            let n = count
                .parse::<usize>()
                .ok()
                .or_else(|| consts.iter().find(|(k, _)| *k == count).map(|(_, v)| *v))
                .ok_or_else(|| format!("unroll count {count} is not a number or constant"))?;
            // Find the matching end.
            let (mut depth, mut j) = (1, i + 1);
            while j < lines.len() {
                let u = lines[j].trim_start();
                if u.starts_with("//#unroll ") {
                    depth += 1;
                } else if u.starts_with("//#end") {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                j += 1;
            }
            if depth != 0 {
                return Err(format!("unterminated unroll of {var}"));
            }
            for k in 0..n {
                let mut v = vars.to_vec();
                v.push((var.to_string(), k));
                expand(&lines[i + 1..j], consts, &v, out)?;
            }
            i = j + 1;
            continue;
        }
        let mut line = lines[i].to_string();
        // Longest names first, so `$kx` is not hit by `$k`.
        let mut sorted: Vec<&(String, usize)> = vars.iter().collect();
        sorted.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
        for (name, k) in sorted {
            line = line.replace(&format!("${name}"), &format!("{k}u"));
        }
        out.push_str(&line);
        out.push('\n');
        i += 1;
    }
    Ok(())
}

/// Tiled kernels: rows of the output tile per workgroup.
pub(crate) const BM: usize = 64;
/// Tiled kernels: columns of the output tile per workgroup.
pub(crate) const BN: usize = 64;
/// Tiled kernels: depth of one K-tile.
pub(crate) const BK: usize = 16;
/// Tiled kernels: invocations per workgroup (16 × 16, each owning a (BM/16) × (BN/16) block).
pub(crate) const WG: usize = 256;

/// The tile constants shared by `matmul_tiled.wgsl` and `conv2d_tiled.wgsl`.
pub(crate) fn tile_consts() -> Consts {
    consts(&[
        ("BM", BM),
        ("BN", BN),
        ("BK", BK),
        ("TM", BM / 16),
        ("TN", BN / 16),
        ("LA", BM * BK / WG),
        ("LB", BK * BN / WG),
    ])
}

/// `usize` → shader word; every size is below the binding limit, so it fits.
pub(crate) fn w(v: usize) -> u32 {
    v as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn unroll_blocks_expand_nested() {
        let src = "a\n//#unroll i 2\n//#unroll j N\nx[$i][$j]\n//#end\n//#end\nb";
        let got = super::expand_unrolls(src, &[("N", 2)]).unwrap();
        assert_eq!(got, "a\nx[0u][0u]\nx[0u][1u]\nx[1u][0u]\nx[1u][1u]\nb\n");
        assert!(super::expand_unrolls("//#unroll i 2\nx", &[]).is_err());
    }
}
