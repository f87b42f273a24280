//! Any byte string must give `Ok` or a typed `PipelineError`: no panic, no abort, no hang.
//! Seed with `fixtures/images` (see workers/fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moocard::limits::ImageLimits;
use moocard_worker::pipeline::{process, PipelineConfig};

fuzz_target!(|data: &[u8]| {
    // Smaller limits than production keep each execution fast; the code paths are the same.
    let cfg = PipelineConfig {
        limits: ImageLimits {
            max_megapixels: 4.0,
            max_decode_alloc_bytes: 64 << 20,
            sizes: vec![64, 32],
            ..ImageLimits::default()
        },
        png_preset: 0,
        ..PipelineConfig::default()
    };
    let _ = process(data, None, &cfg);
});
