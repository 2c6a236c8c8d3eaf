//! Pyramid levels as `vips dzsave` builds them, produced lazily and cached.
//!
//! Each level is the one above shrunk by 2×2 box means (libvips's
//! `vips_region_shrink`): without alpha every sample is `(a+b+c+d+2)/4`; with
//! alpha the colour is the alpha-weighted mean and the alpha the plain mean, both
//! truncated as libvips's `double`-to-`uchar` cast does, and a fully transparent
//! block becomes all zeros. On odd sizes the last column and row are replicated.

use crate::bitmap::Bitmap;
use crate::error::{Error, Result};
use crate::layout::Layout;

/// The levels of one image's pyramid; the top (full-resolution) level is always held.
#[derive(Debug)]
pub struct Pyramid {
    layout: Layout,
    /// Indexed by level; `None` until first needed.
    levels: Vec<Option<Bitmap>>,
}

impl Pyramid {
    /// A pyramid over `full`, whose size must be the layout's.
    pub fn new(full: Bitmap, layout: Layout) -> Result<Self> {
        if (full.width(), full.height()) != (layout.width(), layout.height()) {
            return Err(Error::InvalidOption(format!(
                "image {}×{} does not match layout {}×{}",
                full.width(),
                full.height(),
                layout.width(),
                layout.height()
            )));
        }
        let mut levels = vec![None; layout.level_count() as usize];
        levels[layout.max_level() as usize] = Some(full);
        Ok(Pyramid { layout, levels })
    }

    /// The geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The full-resolution level, dropping the others.
    pub fn into_top(mut self) -> Result<Bitmap> {
        let max = self.layout.max_level() as usize;
        match self.levels.pop().flatten() {
            Some(top) => Ok(top),
            None => unreachable_level(max),
        }
    }

    /// The pixels of `level`, built from the nearest level above that is
    /// already held, caching every level made on the way.
    pub fn level(&mut self, level: u32) -> Result<&Bitmap> {
        let max = self.layout.max_level();
        if level > max {
            return Err(Error::NoSuchTile {
                level,
                col: 0,
                row: 0,
            });
        }
        let target = level as usize;
        let mut from = target;
        while self.levels[from].is_none() {
            from += 1;
        }
        while from > target {
            let next = match &self.levels[from] {
                Some(above) => shrink(above)?,
                None => unreachable_level(from)?,
            };
            from -= 1;
            self.levels[from] = Some(next);
        }
        match &self.levels[target] {
            Some(bitmap) => Ok(bitmap),
            None => unreachable_level(target),
        }
    }
}

fn unreachable_level<T>(level: usize) -> Result<T> {
    Err(Error::Decode(format!("pyramid level {level} is missing")))
}

/// Halves `src` (rounding the size up) as `vips dzsave` does between levels.
pub fn shrink(src: &Bitmap) -> Result<Bitmap> {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (dw, dh) = (sw.div_ceil(2), sh.div_ceil(2));
    let ch = src.channels();
    let stride = src.stride();
    let data = src.data();
    let mut out = vec![0u8; dw * dh * ch];
    for (oy, out_row) in out.chunks_exact_mut(dw * ch).enumerate() {
        let y0 = 2 * oy;
        // Replicate the last row when the height is odd.
        let y1 = (y0 + 1).min(sh - 1);
        let row0 = &data[y0 * stride..(y0 + 1) * stride];
        let row1 = &data[y1 * stride..(y1 + 1) * stride];
        shrink_pair(row0, row1, out_row, sw, ch);
    }
    Bitmap::new(dw as u32, dh as u32, ch, out)
}

/// [`shrink`] into the memory of `src` itself, so that no second image is ever held.
///
/// Output row `oy` reads input rows `2·oy` and `2·oy + 1` and lands before the
/// start of input row `2·oy`, so every row is read before it is overwritten;
/// only row 0, which lands on its own input, goes through a scratch row.
pub fn shrink_in_place(src: Bitmap) -> Result<Bitmap> {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (dw, dh) = (sw.div_ceil(2), sh.div_ceil(2));
    let ch = src.channels();
    let (stride, out_stride) = (src.stride(), dw * ch);
    let mut data = src.into_data();
    let row1_of = |y0: usize| (y0 + 1).min(sh - 1);
    let mut first = vec![0u8; out_stride];
    let y1 = row1_of(0);
    shrink_pair(
        &data[..stride],
        &data[y1 * stride..(y1 + 1) * stride],
        &mut first,
        sw,
        ch,
    );
    for oy in 1..dh {
        let y0 = 2 * oy;
        let (done, rest) = data.split_at_mut(y0 * stride);
        let row0 = &rest[..stride];
        let row1 = &rest[(row1_of(y0) - y0) * stride..][..stride];
        shrink_pair(
            row0,
            row1,
            &mut done[oy * out_stride..(oy + 1) * out_stride],
            sw,
            ch,
        );
    }
    data[..out_stride].copy_from_slice(&first);
    data.truncate(out_stride * dh);
    Bitmap::new(dw as u32, dh as u32, ch, data)
}

/// One output row from two input rows of `width` pixels of `ch` channels (the same row twice
/// for an odd height's last row); `out` holds `width.div_ceil(2)` pixels.
pub(crate) fn shrink_pair(row0: &[u8], row1: &[u8], out: &mut [u8], width: usize, ch: usize) {
    if ch == 4 {
        shrink_row_alpha(row0, row1, out, width);
    } else {
        shrink_row(row0, row1, out, width);
    }
}

/// RGB rows; the channel count is a constant so that the loop vectorises.
fn shrink_row(row0: &[u8], row1: &[u8], out: &mut [u8], width: usize) {
    const CH: usize = 3;
    let mean = |a: u8, b: u8, c: u8, d: u8| {
        ((u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d) + 2) >> 2) as u8
    };
    let pairs = width / 2;
    let (whole, odd) = out.split_at_mut(pairs * CH);
    for ((px, top), bottom) in whole
        .chunks_exact_mut(CH)
        .zip(row0.chunks_exact(2 * CH))
        .zip(row1.chunks_exact(2 * CH))
    {
        for c in 0..CH {
            px[c] = mean(top[c], top[CH + c], bottom[c], bottom[CH + c]);
        }
    }
    // Replicate the last column when the width is odd.
    if odd.len() == CH {
        let x = (width - 1) * CH;
        for c in 0..CH {
            odd[c] = mean(row0[x + c], row0[x + c], row1[x + c], row1[x + c]);
        }
    }
}

fn shrink_row_alpha(row0: &[u8], row1: &[u8], out: &mut [u8], width: usize) {
    for (ox, px) in out.chunks_exact_mut(4).enumerate() {
        let x0 = 2 * ox * 4;
        let x1 = (2 * ox + 1).min(width - 1) * 4;
        let quad = [
            &row0[x0..x0 + 4],
            &row0[x1..x1 + 4],
            &row1[x0..x0 + 4],
            &row1[x1..x1 + 4],
        ];
        let alpha: u32 = quad.iter().map(|p| u32::from(p[3])).sum();
        if alpha == 0 {
            px.fill(0);
            continue;
        }
        for c in 0..3 {
            let weighted: u32 = quad.iter().map(|p| u32::from(p[c]) * u32::from(p[3])).sum();
            px[c] = (weighted / alpha) as u8;
        }
        px[3] = (alpha / 4) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(width: u32, height: u32, values: &[u8]) -> Bitmap {
        let data = values.iter().flat_map(|&v| [v, v, v]).collect();
        Bitmap::new(width, height, 3, data).expect("valid")
    }

    fn reds(b: &Bitmap) -> Vec<u8> {
        b.data().chunks_exact(b.channels()).map(|p| p[0]).collect()
    }

    #[test]
    fn rounds_half_up_and_replicates_odd_edges() {
        // The same 5×3 image run through `vips dzsave --suffix .png`; vips's levels were
        // 3×2 [40 60 76; 2 4 7], 2×1 [27 42] and 1×1 [35].
        let src = grey(
            5,
            3,
            &[10, 20, 30, 40, 51, 60, 70, 80, 90, 100, 1, 2, 3, 4, 7],
        );
        let l2 = shrink(&src).expect("shrinks");
        assert_eq!((l2.width(), l2.height()), (3, 2));
        assert_eq!(reds(&l2), [40, 60, 76, 2, 4, 7]);
        let l1 = shrink(&l2).expect("shrinks");
        assert_eq!(reds(&l1), [27, 42]);
        let l0 = shrink(&l1).expect("shrinks");
        assert_eq!(reds(&l0), [35]);
    }

    #[test]
    fn in_place_equals_a_copy() {
        for (w, h, ch) in [
            (5, 3, 3),
            (6, 4, 3),
            (7, 1, 4),
            (1, 9, 3),
            (1, 1, 4),
            (33, 17, 4),
        ] {
            let data = (0..w * h * ch).map(|v| (v * 37 % 251) as u8).collect();
            let b = Bitmap::new(w as u32, h as u32, ch, data).expect("valid");
            let mut copy = b.clone();
            let mut inplace = b;
            while copy.width() > 1 || copy.height() > 1 {
                copy = shrink(&copy).expect("shrinks");
                inplace = shrink_in_place(inplace).expect("shrinks");
                assert_eq!(copy, inplace, "{w}×{h}×{ch}");
            }
        }
    }

    #[test]
    fn one_pixel_stays_one_pixel() {
        let one = grey(1, 1, &[200]);
        assert_eq!(shrink(&one).expect("shrinks"), one);
    }

    #[test]
    fn alpha_weights_colour_and_truncates() {
        // One opaque red pixel, one half-transparent blue, two fully transparent.
        let data = vec![
            255, 0, 0, 255, /**/ 0, 0, 255, 128, //
            9, 9, 9, 0, /**/ 9, 9, 9, 0,
        ];
        let b = Bitmap::new(2, 2, 4, data).expect("valid");
        let out = shrink(&b).expect("shrinks");
        // red = 255·255/383 = 169.8 → 169; blue = 255·128/383 = 85.2 → 85; alpha = 383/4 → 95.
        assert_eq!(out.data(), &[169, 0, 85, 95]);
    }

    #[test]
    fn fully_transparent_block_is_zero() {
        let b = Bitmap::new(1, 1, 4, vec![50, 60, 70, 0]).expect("valid");
        assert_eq!(shrink(&b).expect("shrinks").data(), &[0, 0, 0, 0]);
    }

    #[test]
    fn opaque_alpha_mean_truncates_like_vips() {
        let data = [10, 0, 0, 255, 11, 0, 0, 255, 10, 0, 0, 255, 11, 0, 0, 255].to_vec();
        let b = Bitmap::new(2, 2, 4, data).expect("valid");
        // 42/4 = 10.5: truncated with alpha, rounded up without.
        assert_eq!(shrink(&b).expect("shrinks").data(), &[10, 0, 0, 255]);
        let rgb = grey(2, 2, &[10, 11, 10, 11]);
        assert_eq!(reds(&shrink(&rgb).expect("shrinks")), [11]);
    }

    #[test]
    fn levels_are_built_lazily_from_the_nearest_cached_one() {
        let layout = Layout::new(5, 3, 254, 1).expect("layout");
        let src = grey(
            5,
            3,
            &[10, 20, 30, 40, 51, 60, 70, 80, 90, 100, 1, 2, 3, 4, 7],
        );
        let mut p = Pyramid::new(src, layout).expect("pyramid");
        assert_eq!(reds(p.level(0).expect("level 0")), [35]);
        assert!(p.levels.iter().all(Option::is_some));
        assert_eq!(reds(p.level(1).expect("level 1")), [27, 42]);
        assert!(p.level(4).is_err());
    }
}
