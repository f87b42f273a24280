//! The `moocard thumbnail IN OUTDIR` command: runs [`process`] on one file and writes
//! `{OUTDIR}/{size}.{jpg|png}`, `{size}.{webp|avif}` per extra format and, when asked,
//! `master.webp`. Used by the benchmark scripts (shared/bench) and for trying the
//! pipeline by hand.

use std::path::Path;

use anyhow::Context;

use super::{process, PipelineConfig};

/// Thumbnails `input` into `outdir` (created if missing): the default configuration's
/// sizes, without a master (shared/bench's `EXTRA_CMD` interface).
pub fn thumbnail_cli(input: &Path, outdir: &Path) -> anyhow::Result<()> {
    thumbnail_with(input, outdir, &PipelineConfig::default().sizes_only(), 1)
}

/// [`thumbnail_cli`] with explicit settings (extra formats, no master: benchmarks), run
/// `repeat` times in this process; each run (read and process, as an in-process anchor
/// times it) prints `run_ms=`, and the last run's files are written.
pub fn thumbnail_with(
    input: &Path,
    outdir: &Path,
    cfg: &PipelineConfig,
    repeat: usize,
) -> anyhow::Result<()> {
    let run = || -> anyhow::Result<super::Output> {
        let started = std::time::Instant::now();
        let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
        let out = process(&bytes, None, cfg)
            .with_context(|| format!("processing {}", input.display()))?;
        if repeat > 1 {
            println!("run_ms={:.3}", started.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(out)
    };
    let mut out = run()?;
    for _ in 1..repeat {
        // The previous output is freed first, as a worker's is before its next job.
        drop(out);
        out = run()?;
    }
    std::fs::create_dir_all(outdir).with_context(|| format!("creating {}", outdir.display()))?;
    let mut files: Vec<(String, &[u8])> = out
        .variants
        .iter()
        .map(|v| (format!("{}.{}", v.size, v.format.extension()), &v.bytes[..]))
        .collect();
    for v in &out.extra {
        if let super::Slot::Extra(f) = v.slot {
            files.push((format!("{}.{}", v.size, f.extension()), &v.bytes[..]));
        }
    }
    if !out.master.is_empty() {
        files.push(("master.webp".to_owned(), &out.master[..]));
    }
    for (name, bytes) in files {
        let path = outdir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
