//! `cargo bench -p moocard-worker --bench pipeline`: `process()` end to end (all five sizes)
//! over a few fixtures and, when present, photos from the benchmark corpus
//! (`$MOOCARD_BENCH_CORPUS`, default `/work/shared/bench/corpus`; see shared/bench/BASELINE.md).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use moocard_worker::pipeline::{process, PipelineConfig};

const FIXTURES: &[&str] = &[
    "photo-hubble.jpg",
    "big-orient-6.jpg",
    "alpha.png",
    "p3.png",
];
const CORPUS: &[&str] = &[
    "p13_fallenleaf_4mp_exif_canon.jpg",
    "p01_kleiber_20mp.jpg",
    "p05_sunset_12mp_prog.jpg",
    "d01_bridge_orient6.jpg",
    "d05_friends_alpha_4mp.png",
    "d07_dragonfly_13mp.webp",
];

fn inputs() -> Vec<(String, Vec<u8>)> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images");
    let corpus = std::env::var_os("MOOCARD_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/bench/corpus"));
    let mut out = Vec::new();
    for name in FIXTURES {
        if let Ok(b) = std::fs::read(fixtures.join(name)) {
            out.push((format!("fixture/{name}"), b));
        }
    }
    for name in CORPUS {
        if let Ok(b) = std::fs::read(corpus.join(name)) {
            out.push((format!("corpus/{name}"), b));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let cfg = PipelineConfig::default();
    let mut group = c.benchmark_group("process");
    group.sample_size(10);
    for (name, bytes) in inputs() {
        group.bench_function(name, |b| {
            b.iter(|| process(&bytes, None, &cfg).expect("processes"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
