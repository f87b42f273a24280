//! Runs the avatar pipeline on one file: `thumbnail IN OUTDIR` writes
//! `OUTDIR/{512,256,128,64,32}.{jpg|png}` (the benchmark's EXTRA_CMD interface).

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(input), Some(outdir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: thumbnail IN OUTDIR");
    };
    moocard_worker::pipeline::cli::thumbnail_cli(&PathBuf::from(input), &PathBuf::from(outdir))
}
