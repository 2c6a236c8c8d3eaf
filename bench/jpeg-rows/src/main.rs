//! The strip-by-strip JPEG decode Tessera is waiting for, measured.
//!
//! zune-jpeg 0.5.16-rc3's `raw_output().decode_next_imcu_row` gives each component's samples after
//! the IDCT, one iMCU row at a time; here they are upsampled with libjpeg's "fancy" filters and
//! turned into RGB with libjpeg's integer tables (`jdsample.c`, `jdcolor.c`), rows leaving as soon
//! as the chroma they blend with has arrived. Printed beside zune-jpeg's own whole-image decode:
//! the time (medians), the memory each holds, and how far each is from libjpeg's decode of the
//! same file (`vips rawsave`, libjpeg-turbo, the reference the pyramids are compared with).
//!
//! Usage, from the repository (its `.cargo/config.toml` applies):
//! `cargo run --release --manifest-path bench/jpeg-rows/Cargo.toml -- IMAGE.jpg [RUNS]`
use std::process::Command;
use std::time::{Duration, Instant};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::{JpegDecoder, RawImcuRowStatus};

/// libjpeg's `ycc_rgb_convert` tables (16-bit fixed point, halves rounded in): tiler-wasm's
/// `color::YccToRgb`, restated because this crate cannot depend on tiler-wasm (see Cargo.toml).
struct YccToRgb {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cb_g: [i32; 256],
    cr_g: [i32; 256],
}

impl YccToRgb {
    fn new() -> Self {
        const HALF: i32 = 1 << 15;
        let fix = |v: f64| (v * 65536.0 + 0.5) as i32;
        let mut t = YccToRgb {
            cr_r: [0; 256],
            cb_b: [0; 256],
            cb_g: [0; 256],
            cr_g: [0; 256],
        };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix(1.402) * x + HALF) >> 16;
            t.cb_b[i] = (fix(1.772) * x + HALF) >> 16;
            t.cb_g[i] = -fix(0.344_14) * x;
            t.cr_g[i] = -fix(0.714_14) * x + HALF;
        }
        t
    }

    fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        let c = |v: i32| v.clamp(0, 255) as u8;
        [
            c(y + self.cr_r[cr]),
            c(y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16)),
            c(y + self.cb_b[cb]),
        ]
    }
}

/// One upsampled chroma row: libjpeg-turbo's `h2v2_fancy_upsample`, `h2v1_fancy_upsample` and
/// `h1v2_fancy_upsample` (`far` is the row above for the upper output row, below for the `lower`),
/// with its plain replication for rows of one or two samples.
fn upsample(h: usize, v: usize, near: &[u8], far: &[u8], lower: bool, out: &mut [u8]) {
    let n = near.len();
    match (h, v) {
        (1, 1) => out.copy_from_slice(near),
        (1, _) => {
            let bias = if lower { 2 } else { 1 };
            for ((o, &a), &b) in out.iter_mut().zip(near).zip(far) {
                *o = ((3 * u16::from(a) + u16::from(b) + bias) >> 2) as u8;
            }
        }
        (_, 1) if n > 2 => {
            let s = |i: usize| u16::from(near[i]);
            for (i, pair) in out.chunks_exact_mut(2).enumerate() {
                let this = 3 * s(i);
                pair[0] = ((this + s(i.saturating_sub(1)) + 1) >> 2) as u8;
                pair[1] = ((this + s((i + 1).min(n - 1)) + 2) >> 2) as u8;
            }
        }
        (_, _) if n > 2 => {
            let sum = |i: usize| 3 * u16::from(near[i]) + u16::from(far[i]);
            for (i, pair) in out.chunks_exact_mut(2).enumerate() {
                let this = 3 * sum(i);
                pair[0] = ((this + sum(i.saturating_sub(1)) + 8) >> 4) as u8;
                pair[1] = ((this + sum((i + 1).min(n - 1)) + 7) >> 4) as u8;
            }
        }
        _ => {
            for (pair, &s) in out.chunks_exact_mut(2).zip(near) {
                pair.fill(s);
            }
        }
    }
}

/// Decodes a YCbCr JPEG an iMCU row at a time, handing `band` rows of RGB at a time to `sink`;
/// returns the most bytes of component rows it held at once.
fn decode_rows(bytes: &[u8], band: usize, sink: &mut dyn FnMut(&[u8])) -> usize {
    let mut d = JpegDecoder::new_with_options(
        ZCursor::new(bytes),
        DecoderOptions::default().set_strict_mode(false),
    );
    d.decode_headers().expect("a JPEG");
    let (w, h) = d.dimensions().expect("a size");
    assert_eq!(
        d.input_colorspace(),
        Some(ColorSpace::YCbCr),
        "a YCbCr JPEG"
    );
    let layout = d.raw_output().layout().expect("a layout");
    let (hs, vs) = (
        layout[0].horizontal_sampling_factor,
        layout[0].vertical_sampling_factor,
    );
    assert!(
        hs <= 2
            && vs <= 2
            && layout[1].horizontal_sampling_factor == 1
            && layout[1].vertical_sampling_factor == 1
    );
    let widths: Vec<usize> = layout[..3].iter().map(|p| p.width).collect();
    let mut imcu: Vec<Vec<u8>> = layout[..3]
        .iter()
        .map(|p| vec![0u8; p.width * p.vertical_sampling_factor * 8])
        .collect();
    let (cw, ch) = (layout[1].width, layout[1].height);
    // Rows luma_first.. and chroma_first.. still needed, and how many have arrived.
    let (mut luma, mut cb, mut cr) = (Vec::new(), Vec::new(), Vec::new());
    let (mut luma_first, mut luma_in, mut chroma_first, mut chroma_in) = (0, 0, 0, 0);
    let ycc = YccToRgb::new();
    let (mut cb_row, mut cr_row) = (vec![0u8; 2 * cw], vec![0u8; 2 * cw]);
    let mut out = Vec::with_capacity(band * w * 3);
    let mut held = 0;
    // The chroma row of image row y and the neighbour it blends with (libjpeg's context rows).
    let chroma_of = |y: usize| match vs {
        2 => (
            y / 2,
            if y.is_multiple_of(2) {
                (y / 2).saturating_sub(1)
            } else {
                (y / 2 + 1).min(ch - 1)
            },
        ),
        _ => (y, y),
    };
    let mut y = 0;
    while y < h {
        let (near, far) = chroma_of(y);
        if luma_in <= y || chroma_in <= near.max(far) {
            let mut planes: Vec<&mut [u8]> = imcu.iter_mut().map(Vec::as_mut_slice).collect();
            let rows = match d
                .raw_output()
                .decode_next_imcu_row(&mut planes, &widths)
                .expect("decodes")
            {
                RawImcuRowStatus::RowReady { rows_written } => rows_written,
                other => panic!("the JPEG ended early: {other:?}"),
            };
            luma.extend_from_slice(&imcu[0][..widths[0] * rows[0]]);
            cb.extend_from_slice(&imcu[1][..cw * rows[1]]);
            cr.extend_from_slice(&imcu[2][..cw * rows[2]]);
            luma_in += rows[0];
            chroma_in += rows[1];
            held = held.max(luma.len() + cb.len() + cr.len());
            continue;
        }
        let l = &luma[(y - luma_first) * w..][..w];
        for (plane, to) in [(&cb, &mut cb_row), (&cr, &mut cr_row)] {
            let row = |j: usize| &plane[(j - chroma_first) * cw..][..cw];
            upsample(hs, vs, row(near), row(far), y % 2 == 1, &mut to[..cw * hs]);
        }
        let start = out.len();
        out.resize(start + w * 3, 0);
        for (((px, &lv), &b), &r) in out[start..]
            .chunks_exact_mut(3)
            .zip(l)
            .zip(&cb_row[..w])
            .zip(&cr_row[..w])
        {
            px.copy_from_slice(&ycc.rgb(lv, b, r));
        }
        y += 1;
        if out.len() == band * w * 3 || y == h {
            sink(&out);
            out.clear();
            luma.drain(..(y - luma_first) * w);
            luma_first = y;
            if y < h {
                let (near, far) = chroma_of(y);
                let keep = near.min(far);
                cb.drain(..(keep - chroma_first) * cw);
                cr.drain(..(keep - chroma_first) * cw);
                chroma_first = keep;
            }
        }
    }
    held + out.capacity()
}

fn decode_whole(bytes: &[u8]) -> Vec<u8> {
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    JpegDecoder::new_with_options(ZCursor::new(bytes), options)
        .decode()
        .expect("decodes")
}

/// PSNR in dB, the largest difference, and how many samples differ.
fn compare(a: &[u8], b: &[u8]) -> (f64, i32, usize) {
    assert_eq!(a.len(), b.len(), "the same size");
    let (mut squares, mut most, mut differ) = (0f64, 0, 0);
    for (x, y) in a.iter().zip(b) {
        let e = (i32::from(*x) - i32::from(*y)).abs();
        squares += f64::from(e * e);
        most = most.max(e);
        differ += usize::from(e != 0);
    }
    let mse = squares / a.len() as f64;
    (
        if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0 * 255.0 / mse).log10()
        },
        most,
        differ,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: jpeg-rows IMAGE.jpg [RUNS]");
    let runs: usize = args
        .get(2)
        .map_or(3, |r| r.parse().expect("RUNS is a number"));
    let bytes = std::fs::read(path).expect("readable");
    let raw = std::env::temp_dir().join(format!("jpeg-rows-{}.raw", std::process::id()));
    let vips = Command::new("vips")
        .arg("rawsave")
        .arg(path)
        .arg(&raw)
        .status()
        .expect("vips runs");
    assert!(vips.success(), "vips rawsave failed");
    let libjpeg = std::fs::read(&raw).expect("vips wrote the raw pixels");
    let _ = std::fs::remove_file(&raw);

    let (mut whole_times, mut row_times) = (Vec::new(), Vec::new());
    let mut held = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let whole = decode_whole(&bytes);
        whole_times.push(t.elapsed());
        drop(whole);
        let t = Instant::now();
        let mut checksum = 0u64;
        held = decode_rows(&bytes, 64, &mut |band| {
            checksum = checksum.wrapping_add(u64::from(band[band.len() / 2]))
        });
        row_times.push(t.elapsed());
        std::hint::black_box(checksum);
    }
    let whole = decode_whole(&bytes);
    let mut rows = Vec::with_capacity(whole.len());
    decode_rows(&bytes, 64, &mut |band| rows.extend_from_slice(band));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (pw, mw, dw) = compare(&whole, &libjpeg);
    let (pr, mr, dr) = compare(&rows, &libjpeg);
    println!("{path}: {} bytes of RGB, medians of {runs}", whole.len());
    println!(
        "| decode | ms | holds MiB | PSNR vs libjpeg dB | largest difference | samples differing |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| zune-jpeg, whole image | {:.0} | {:.1} | {pw:.1} | {mw} | {dw} |",
        ms(median(whole_times)),
        whole.len() as f64 / 1048576.0
    );
    println!(
        "| iMCU rows + libjpeg's upsampling and colour | {:.0} | {:.1} | {pr:.1} | {mr} | {dr} |",
        ms(median(row_times)),
        held as f64 / 1048576.0
    );
}
