//! avif_probe: encode 512 px reference squares (PNG, opaque RGB) to AVIF with one rav1e
//! configuration, to compare configurations at equal DSSIM (bench/avif-settings.py drives it).
//!
//!     avif_probe OUT_DIR QUALITY SPEED CHROMA(420|444) TUNE(psy|psnr) DEPTH(8|10) PNG...
//!     avif_probe OUT_DIR QUALITY SPEED ravif - - PNG...      (ravif 0.12 as the pipeline uses it)
//!
//! Prints one line per file: name, bytes, encode CPU seconds (this thread).

use std::time::Instant;

use rav1e::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, quality, speed, chroma, tune, depth, files @ ..] = &args[..] else {
        panic!("usage: avif_probe OUT_DIR QUALITY SPEED CHROMA TUNE DEPTH PNG...");
    };
    let quality: f32 = quality.parse().expect("quality");
    let speed: u8 = speed.parse().expect("speed");
    for f in files {
        let img = image::open(f).expect("png").to_rgb8();
        let (w, h) = img.dimensions();
        let t = Instant::now();
        let bytes = if chroma == "ravif" {
            let px: Vec<ravif::RGB8> = img
                .pixels()
                .map(|p| ravif::RGB8::new(p[0], p[1], p[2]))
                .collect();
            ravif::Encoder::new()
                .with_quality(quality)
                .with_speed(speed)
                .with_bit_depth(ravif::BitDepth::Eight)
                .with_num_threads(Some(1))
                .encode_rgb(ravif::Img::new(&px[..], w as usize, h as usize))
                .expect("ravif")
                .avif_file
        } else {
            let cfg = Probe {
                quality,
                speed,
                subsample: chroma == "420",
                psnr: tune == "psnr",
                ten_bit: depth == "10",
            };
            encode(&img, &cfg)
        };
        let cpu = t.elapsed().as_secs_f64();
        let name = std::path::Path::new(f)
            .parent()
            .and_then(|p| p.file_name())
            .expect("refs/<name>/512.png")
            .to_string_lossy()
            .to_string();
        std::fs::write(format!("{out}/{name}.avif"), &bytes).expect("write the AVIF");
        println!("{name}\t{}\t{cpu:.4}", bytes.len());
    }
}

struct Probe {
    quality: f32,
    speed: u8,
    subsample: bool,
    psnr: bool,
    ten_bit: bool,
}

fn quantizer(quality: f32) -> usize {
    // ravif's mapping, so qualities line up with the pipeline's.
    let q = quality / 100.;
    let x = if q >= 0.85 {
        (1. - q) * 3.
    } else if q > 0.25 {
        1. - 0.125 - q * 0.5
    } else {
        1. - q
    };
    (x * 255.).round() as usize
}

fn ycbcr(p: &image::Rgb<u8>) -> [f32; 3] {
    let [r, g, b] = p.0.map(f32::from);
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    [
        y,
        (b - y) * (0.5 / 0.886) + 128.,
        (r - y) * (0.5 / 0.701) + 128.,
    ]
}

fn encode(img: &image::RgbImage, p: &Probe) -> Vec<u8> {
    if p.ten_bit {
        encode_t::<u16>(img, p, 4.0)
    } else {
        encode_t::<u8>(img, p, 1.0)
    }
}

fn encode_t<T: Pixel>(img: &image::RgbImage, p: &Probe, scale: f32) -> Vec<u8> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut enc = EncoderConfig::with_speed_preset(p.speed);
    enc.width = w;
    enc.height = h;
    enc.bit_depth = if p.ten_bit { 10 } else { 8 };
    enc.chroma_sampling = if p.subsample {
        ChromaSampling::Cs420
    } else {
        ChromaSampling::Cs444
    };
    enc.pixel_range = PixelRange::Full;
    enc.color_description = Some(ColorDescription {
        color_primaries: ColorPrimaries::BT709,
        transfer_characteristics: TransferCharacteristics::SRGB,
        matrix_coefficients: MatrixCoefficients::BT601,
    });
    enc.still_picture = true;
    enc.quantizer = quantizer(p.quality);
    enc.min_quantizer = enc.quantizer as u8;
    enc.tune = if p.psnr {
        Tune::Psnr
    } else {
        Tune::Psychovisual
    };
    enc.speed_settings.scene_detection_mode = SceneDetectionSpeed::None;
    enc.speed_settings.rdo_lookahead_frames = 1;
    let cfg = Config::new().with_encoder_config(enc).with_threads(1);
    let mut ctx: Context<T> = cfg.new_context().expect("config");
    let mut frame = ctx.new_frame();
    let yuv: Vec<[f32; 3]> = img.pixels().map(ycbcr).collect();
    let cast = |v: f32| T::cast_from((v * scale).round().clamp(0., 255. * scale) as u16);
    {
        let mut y = frame.planes[0].mut_slice(Default::default());
        for (row, line) in y.rows_iter_mut().take(h).enumerate() {
            for (x, px) in line[..w].iter_mut().enumerate() {
                *px = cast(yuv[row * w + x][0]);
            }
        }
    }
    for (c, plane) in frame.planes.iter_mut().enumerate().skip(1) {
        let mut plane = plane.mut_slice(Default::default());
        if p.subsample {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            for (row, line) in plane.rows_iter_mut().take(ch).enumerate() {
                for (x, px) in line[..cw].iter_mut().enumerate() {
                    let mut sum = 0.;
                    let mut n = 0.;
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let (sy, sx) = (2 * row + dy, 2 * x + dx);
                        if sy < h && sx < w {
                            sum += yuv[sy * w + sx][c];
                            n += 1.;
                        }
                    }
                    *px = cast(sum / n);
                }
            }
        } else {
            for (row, line) in plane.rows_iter_mut().take(h).enumerate() {
                for (x, px) in line[..w].iter_mut().enumerate() {
                    *px = cast(yuv[row * w + x][c]);
                }
            }
        }
    }
    ctx.send_frame(frame).expect("frame");
    ctx.flush();
    let mut data = Vec::new();
    loop {
        match ctx.receive_packet() {
            Ok(pkt) => data.extend_from_slice(&pkt.data),
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached) => break,
            Err(e) => panic!("rav1e: {e:?}"),
        }
    }
    let mut a = avif_serialize::Aviffy::new();
    a.set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
        .set_full_color_range(true)
        .set_bit_depth(if p.ten_bit { 10 } else { 8 });
    if p.subsample {
        a.set_chroma_subsampling((true, true)).set_seq_profile(0);
    } else {
        a.set_seq_profile(1);
    }
    a.to_vec(
        &data,
        None,
        w as u32,
        h as u32,
        if p.ten_bit { 10 } else { 8 },
    )
}
