//! The WGSL text a pipeline is compiled from: the shader file reduced to the one entry point
//! launched, its specialisation constants prepended as `const` declarations and its
//! `//#unroll` blocks expanded.

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

/// `src` without its other entry points: every `@compute` function but `entry` is dropped, the
/// shared declarations and helper functions are kept. The shader compiler (naga's WGSL front
/// end) spends time quadratic in each function's expression count, and every specialisation is
/// parsed afresh: the unrolled bodies of a file's other entry points were most of the parsing
/// of `conv2d.wgsl`. A function ends where its braces balance (comments ignored; WGSL has no
/// string literals).
pub(crate) fn only_entry_point(src: &str, entry: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].trim_start().starts_with("@compute") {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
            continue;
        }
        let end = function_end(&lines, i);
        let wanted = format!("fn {entry}(");
        if lines[i..end].iter().any(|l| l.contains(&wanted)) {
            for l in &lines[i..end] {
                out.push_str(l);
                out.push('\n');
            }
        }
        i = end;
    }
    out
}

/// The line after the function whose attributes start at `lines[first]`: the first line where
/// its braces balance again (the rest of the source when they never do, so a malformed shader
/// still reaches the compiler and its message).
fn function_end(lines: &[&str], first: usize) -> usize {
    let mut depth = 0usize;
    let mut opened = false;
    for (i, line) in lines.iter().enumerate().skip(first) {
        let code = line.split("//").next().unwrap_or("");
        for ch in code.chars() {
            match ch {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if opened && depth == 0 {
            return i + 1;
        }
    }
    lines.len()
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

    #[test]
    fn other_entry_points_are_dropped_and_shared_code_kept() {
        let src = "struct P { n: u32 }\n\
                   @compute @workgroup_size(64)\n\
                   fn first(@builtin(workgroup_id) w: vec3<u32>) {\n    if (w.x > 0u) { return; } // }\n}\n\
                   fn helper() -> u32 { return 1u; }\n\
                   @compute @workgroup_size(64) fn second() { let x = helper(); }\n\
                   @compute\n@workgroup_size(8)\nfn third() {\n}\n";
        let second = super::only_entry_point(src, "second");
        assert_eq!(
            second,
            "struct P { n: u32 }\nfn helper() -> u32 { return 1u; }\n\
             @compute @workgroup_size(64) fn second() { let x = helper(); }\n"
        );
        let first = super::only_entry_point(src, "first");
        assert!(first.contains("fn first(") && first.contains("return; } // }\n}\n"));
        assert!(!first.contains("fn second") && !first.contains("fn third"));
        let third = super::only_entry_point(src, "third");
        assert!(third.ends_with("@compute\n@workgroup_size(8)\nfn third() {\n}\n"));
        // Every shipped shader keeps exactly the entry point asked for.
        for (file, entries) in [
            (
                include_str!("../../../../shaders/conv2d.wgsl"),
                &["conv_fwd", "conv_bwd_input", "conv_bwd_weight"][..],
            ),
            (
                include_str!("../../../../shaders/pool2d.wgsl"),
                &["pool_fwd4", "max_fwd", "pool_bwd_rows"][..],
            ),
        ] {
            for entry in entries {
                let kept = super::only_entry_point(file, entry);
                assert_eq!(kept.matches("@compute").count(), 1, "{entry}");
                assert!(kept.contains(&format!("fn {entry}(")), "{entry}");
            }
        }
    }
}
