//! `fuzz-seeds OUT WORK`: writes the fuzz targets' seed corpora under `OUT/<target>/` (see
//! `fuzz_targets::seeds`), training toy runs in `WORK`. `cargo xtask fuzz` runs it.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), Some(work)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: fuzz-seeds OUT WORK");
    };
    let counts = fuzz_targets::seeds::write_all(out.as_ref(), work.as_ref())
        .context("cannot write the fuzz seeds")?;
    for (target, n) in counts {
        println!("{target}: {n} seed files");
    }
    Ok(())
}
