//! Peak memory of one pipeline job over hostile-but-legal inputs (issue 14): each case runs
//! in a child process (this test binary re-run with `MOOCARD_MEMORY_CASE`), which resets its
//! peak RSS (`/proc/self/clear_refs`), runs the pipeline and reports `VmHWM` growth over the
//! RSS it had just before. The inputs are generated here and are tiny on disk: their
//! zlib streams are runs of one back-reference, so hundreds of MB inflate from a few MB.

use std::process::Command;

use moocard_worker::pipeline::{process, PipelineConfig};

/// The goal of issue 14: growth over idle for any input within limits, one job.
const GROWTH_LIMIT: u64 = 64 << 20;

const CASES: &[&str] = &[
    "iccp-bomb",
    "png16-7000",
    "png-50mp",
    "noise-jpeg",
    "webp-13mp",
];

#[test]
fn one_job_stays_within_its_memory_goal() {
    if std::env::var_os("MOOCARD_MEMORY_CASE").is_some() {
        return; // We are a child: the `child` test does the work.
    }
    let exe = std::env::current_exe().expect("test binary");
    // All children at once: the slow part is the unoptimised decoders of the test build.
    let started = std::time::Instant::now();
    let children: Vec<_> = CASES
        .iter()
        .map(|case| {
            let child = Command::new(&exe)
                .args(["--exact", "child", "--nocapture", "--test-threads=1"])
                .env("MOOCARD_MEMORY_CASE", case)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("child runs");
            (case, child)
        })
        .collect();
    for (case, child) in children {
        let out = child.wait_with_output().expect("child ends");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{case}: child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
            .unwrap_or_else(|| panic!("{case}: no RESULT line in\n{stdout}"));
        let mut parts = line.split(' ');
        let growth: u64 = parts.next().and_then(|g| g.parse().ok()).expect("growth");
        let outcome = parts.collect::<Vec<_>>().join(" ");
        eprintln!(
            "{case}: peak RSS growth {} MiB, {outcome}, {:.1} s",
            growth >> 20,
            started.elapsed().as_secs_f64()
        );
        assert!(
            growth <= GROWTH_LIMIT,
            "{case}: peak RSS grew by {} MiB (limit {} MiB); outcome {outcome}",
            growth >> 20,
            GROWTH_LIMIT >> 20
        );
        assert!(outcome.starts_with("ok"), "{case}: {outcome}");
    }
}

#[test]
fn child() {
    let Ok(case) = std::env::var("MOOCARD_MEMORY_CASE") else {
        return;
    };
    let input = match case.as_str() {
        "iccp-bomb" => iccp_bomb(),
        "png16-7000" => zero_png(7000, 7000, 6, 16),
        "png-50mp" => zero_png(7071, 7071, 6, 8),
        "noise-jpeg" => noise_jpeg(3000, 2600),
        "webp-13mp" => gradient_webp(4224, 3168),
        other => panic!("unknown case {other}"),
    };
    let cfg = PipelineConfig::default();
    // Resets VmHWM to the current RSS (Linux >= 4.0), so only the job's own peak counts.
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
    let before = status_kib("VmRSS");
    let result = process(&input, None, &cfg);
    let peak = status_kib("VmHWM");
    let outcome = match result {
        Ok(o) => format!("ok {} variants", o.variants.len()),
        Err(e) => format!("err {e}"),
    };
    println!(
        "RESULT {} {outcome} (input {} bytes)",
        peak.saturating_sub(before) * 1024,
        input.len()
    );
}

/// A lossy WebP the size of a 13 MP phone photo (a gradient, so it is small on disk).
/// libwebp decodes the whole frame (3 bytes a pixel); only the square's window is kept.
fn gradient_webp(w: u32, h: u32) -> Vec<u8> {
    let rgb: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [(x % 256) as u8, (y % 256) as u8, 128]))
        .collect();
    webp::Encoder::from_rgb(&rgb, w, h).encode(80.0).to_vec()
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// A 64x64 RGB PNG whose iCCP profile inflates to 256 MiB of zeros.
fn iccp_bomb() -> Vec<u8> {
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(zlib_zeros(256 << 20));
    let mut png = png_start(64, 64, 2, 8);
    chunk(&mut png, b"iCCP", &iccp);
    chunk(&mut png, b"IDAT", &zlib_zeros(64 * (1 + 64 * 3)));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A PNG of all-zero rows (filter 0, transparent black when it has alpha).
fn zero_png(w: u32, h: u32, color: u8, depth: u8) -> Vec<u8> {
    let channels: u64 = match color {
        0 => 1,
        2 => 3,
        4 => 2,
        _ => 4,
    };
    let row = 1 + u64::from(w) * channels * u64::from(depth) / 8;
    let mut png = png_start(w, h, color, depth);
    chunk(&mut png, b"IDAT", &zlib_zeros(row * u64::from(h)));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Uniform noise encoded by mozjpeg at quality 98: about 10 MiB of entropy-coded data.
fn noise_jpeg(w: usize, h: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let pixels: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w, h);
    // No trellis or Huffman optimisation: the test build is unoptimised C.
    c.set_fastest_defaults();
    c.set_quality(98.0);
    c.set_progressive_mode();
    let mut started = c.start_compress(Vec::new()).expect("start");
    started.write_scanlines(&pixels).expect("scanlines");
    started.finish().expect("finish")
}

fn png_start(w: u32, h: u32, color: u8, depth: u8) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).expect("chunk size").to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = !0u32;
    for &b in kind.iter().chain(data) {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_be_bytes());
}

/// A zlib stream of `n` zero bytes: one fixed-Huffman block of a literal 0 and then
/// length-258, distance-1 copies (13 bits per 258 bytes), then literals for the rest.
fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.out.extend_from_slice(&[0x78, 0x01]);
    w.bits(1, 1); // BFINAL
    w.bits(1, 2); // fixed Huffman
    let literal_zero = |w: &mut BitWriter| w.code(0b0011_0000, 8);
    let mut left = n;
    if left > 0 {
        literal_zero(&mut w);
        left -= 1;
    }
    while left >= 258 {
        w.code(0b1100_0101, 8); // length symbol 285 = 258
        w.code(0, 5); // distance code 0 = 1
        left -= 258;
    }
    for _ in 0..left {
        literal_zero(&mut w);
    }
    w.code(0, 7); // end of block (256)
    w.flush();
    // Adler-32 of zeros: a stays 1, b grows by 1 per byte.
    let adler = (((n % 65_521) as u32) << 16) | 1;
    w.out.extend_from_slice(&adler.to_be_bytes());
    w.out
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl BitWriter {
    /// Plain values go LSB first.
    fn bits(&mut self, value: u64, count: u32) {
        self.acc |= value << self.len;
        self.len += count;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    /// Huffman codes go MSB first.
    fn code(&mut self, code: u64, count: u32) {
        let reversed = (0..count).fold(0, |r, i| r | (((code >> i) & 1) << (count - 1 - i)));
        self.bits(reversed, count);
    }

    fn flush(&mut self) {
        if self.len > 0 {
            self.out.push(self.acc as u8);
            self.acc = 0;
            self.len = 0;
        }
    }
}
