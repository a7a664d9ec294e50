//! The WGSL text a pipeline is compiled from: the shader file reduced to the entry point
//! launched and the functions it calls, its specialisation constants prepended as `const`
//! declarations and its `//#unroll` blocks expanded.

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

/// `src` reduced to what entry point `entry` runs: every function it does not call, directly or
/// through others, is dropped (other entry points included); declarations, bindings and
/// comments are kept. The shader compiler (naga's WGSL front end) spends time quadratic in each
/// function's expression count, and every specialisation is parsed afresh: the unrolled bodies
/// of a file's other entry points were most of the parsing of `conv2d.wgsl`. A function starts
/// at a line beginning with `@compute` or `fn ` and ends where its braces balance (comments
/// ignored; WGSL has no string literals); a `//#unroll` block around a dropped function is
/// left empty. Without a function named `entry`, `src` comes back whole, for the compiler to
/// name the error.
pub(crate) fn only_entry_point(src: &str, entry: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut functions = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with("@compute") || lines[i].starts_with("fn ") {
            let end = function_end(&lines, i);
            functions.push(Function::of(&lines, i, end));
            i = end;
        } else {
            i += 1;
        }
    }
    let Some(root) = functions.iter().position(|f| f.name == entry) else {
        return src.to_string();
    };
    let mut kept = vec![false; functions.len()];
    kept[root] = true;
    let mut pending = vec![root];
    while let Some(caller) = pending.pop() {
        let body = lines[functions[caller].lines.clone()].join("\n");
        for (callee, f) in functions.iter().enumerate() {
            if !kept[callee] && calls(&body, &f.name) {
                kept[callee] = true;
                pending.push(callee);
            }
        }
    }
    let mut dropped = vec![false; lines.len()];
    for (f, _) in functions.iter().zip(&kept).filter(|(_, k)| !**k) {
        dropped[f.lines.clone()].fill(true);
    }
    let mut out = String::with_capacity(src.len());
    for (line, _) in lines.iter().zip(&dropped).filter(|(_, d)| !**d) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A top-level function of a shader source: its name (with any `$VAR` of an enclosing
/// `//#unroll`) and its lines, attributes included.
struct Function {
    name: String,
    lines: std::ops::Range<usize>,
}

impl Function {
    fn of(lines: &[&str], start: usize, end: usize) -> Self {
        let name = lines[start..end]
            .iter()
            .find_map(|l| l.split_once("fn ").map(|(_, rest)| rest))
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                    .collect()
            })
            .unwrap_or_default();
        Self {
            name,
            lines: start..end,
        }
    }
}

/// Whether `code` calls `name`: `name(` not preceded by an identifier character. A name
/// declared inside an `//#unroll` block (`product$q`) stands for every expansion of it: from its
/// first `$` on, any identifier matches (`product0u(`, `product$q(`).
fn calls(code: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let (stem, unrolled) = match name.split_once('$') {
        Some((stem, _)) => (stem, true),
        None => (name, false),
    };
    code.match_indices(stem).any(|(at, _)| {
        let after = &code[at + stem.len()..];
        let rest = if unrolled {
            after.trim_start_matches(is_ident)
        } else {
            after
        };
        !code[..at].chars().next_back().is_some_and(is_ident) && rest.starts_with('(')
    })
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
    fn an_entry_point_keeps_only_the_functions_it_calls() {
        let src = "struct P { n: u32 }\n\
                   @compute @workgroup_size(64)\n\
                   fn first(@builtin(workgroup_id) w: vec3<u32>) {\n    if (w.x > 0u) { return; } // }\n}\n\
                   fn helper() -> u32 { return inner(); }\n\
                   fn inner() -> u32 { return 1u; }\n\
                   fn my_helper() -> u32 { return 2u; }\n\
                   //#unroll j 2\nfn row$j(x: u32) -> u32 { return x; }\n//#end\n\
                   @compute @workgroup_size(64) fn second() { let x = helper() + row$j(1u); }\n\
                   @compute\n@workgroup_size(8)\nfn third() {\n    let y = row1u(2u);\n}\n";
        let second = super::only_entry_point(src, "second");
        assert_eq!(
            second,
            "struct P { n: u32 }\nfn helper() -> u32 { return inner(); }\n\
             fn inner() -> u32 { return 1u; }\n\
             //#unroll j 2\nfn row$j(x: u32) -> u32 { return x; }\n//#end\n\
             @compute @workgroup_size(64) fn second() { let x = helper() + row$j(1u); }\n"
        );
        let first = super::only_entry_point(src, "first");
        assert_eq!(
            first,
            "struct P { n: u32 }\n@compute @workgroup_size(64)\n\
             fn first(@builtin(workgroup_id) w: vec3<u32>) {\n    if (w.x > 0u) { return; } // }\n}\n\
             //#unroll j 2\n//#end\n"
        );
        let third = super::only_entry_point(src, "third");
        assert!(third.ends_with(
            "//#unroll j 2\nfn row$j(x: u32) -> u32 { return x; }\n//#end\n\
             @compute\n@workgroup_size(8)\nfn third() {\n    let y = row1u(2u);\n}\n"
        ));
        assert_eq!(
            super::only_entry_point(src, "fourth"),
            src,
            "no such entry point"
        );
        // Every shipped shader with several entry points keeps exactly the one asked for.
        for (file, entries) in [
            (
                include_str!("../../../../shaders/conv2d.wgsl"),
                &["conv_fwd", "conv_bwd_input", "conv_bwd_weight"][..],
            ),
            (
                include_str!("../../../../shaders/pool2d.wgsl"),
                &["pool_fwd_rows", "max_fwd", "pool_bwd_rows"][..],
            ),
        ] {
            for entry in entries {
                let kept = super::only_entry_point(file, entry);
                assert_eq!(kept.matches("@compute").count(), 1, "{entry}");
                assert!(kept.contains(&format!("fn {entry}(")), "{entry}");
            }
        }
        let fwd =
            super::only_entry_point(include_str!("../../../../shaders/conv2d.wgsl"), "conv_fwd");
        assert!(fwd.contains("fn fwd_kernel_row$j(") && fwd.contains("fn input_segment("));
        assert!(!fwd.contains("fn wgrad_kernel_row") && !fwd.contains("fn bias_partial("));
        let matmul =
            super::only_entry_point(include_str!("../../../../shaders/matmul.wgsl"), "matmul");
        assert!(
            matmul.contains("fn product$q("),
            "called through the unrolled product$q"
        );
    }
}
