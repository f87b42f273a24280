//! The `moocard thumbnail IN OUTDIR` command: runs [`process`] on one file
//! with the default configuration and writes `{OUTDIR}/{size}.{jpg|png}`. Used by the
//! benchmark scripts (shared/bench) and for trying the pipeline by hand.

use std::path::Path;

use anyhow::Context;

use super::{process, PipelineConfig};

/// Thumbnails `input` into `outdir` (created if missing), one file per configured size.
pub fn thumbnail_cli(input: &Path, outdir: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let out = process(&bytes, None, &PipelineConfig::default())
        .with_context(|| format!("processing {}", input.display()))?;
    std::fs::create_dir_all(outdir).with_context(|| format!("creating {}", outdir.display()))?;
    for v in &out.variants {
        let path = outdir.join(format!("{}.{}", v.size, v.format.extension()));
        std::fs::write(&path, &v.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
