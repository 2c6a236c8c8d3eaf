//! EXIF orientation applied as `vips autorot` does: values 1–8, with 5 and 7
//! transposing the image so that width and height swap.

use crate::bitmap::Bitmap;
use crate::error::Result;

/// An EXIF Orientation value, normalised: anything outside 1..=8 is 1.
pub fn normalise(value: u32) -> u16 {
    match value {
        1..=8 => value as u16,
        _ => 1,
    }
}

/// Whether `orientation` swaps width and height (5–8).
pub fn swaps_axes(orientation: u16) -> bool {
    matches!(orientation, 5..=8)
}

/// The size of an image of `width`×`height` after applying `orientation`.
pub fn oriented_size(width: u32, height: u32, orientation: u16) -> (u32, u32) {
    if swaps_axes(orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// Turns the stored image upright: 2–4 in the image's own memory, 5–8 (which
/// swap the axes) into a new one.
///
/// For each output pixel `(x, y)` of the `W`×`H` result the source pixel is
/// (with `w`×`h` the stored size):
/// 2 mirror `(w−1−x, y)`; 3 rotate 180° `(w−1−x, h−1−y)`; 4 flip `(x, h−1−y)`;
/// 5 transpose `(y, x)`; 6 rotate 90° clockwise `(y, h−1−x)`;
/// 7 transverse `(w−1−y, h−1−x)`; 8 rotate 90° anticlockwise `(w−1−y, x)`.
pub fn apply(image: Bitmap, orientation: u16) -> Result<Bitmap> {
    match orientation {
        2..=4 => flip_in_place(image, orientation),
        5..=8 => transpose(image, orientation),
        _ => Ok(image),
    }
}

/// Orientations 2–4 keep the size, so they move pixels within the image's own memory.
fn flip_in_place(image: Bitmap, orientation: u16) -> Result<Bitmap> {
    let (w, h, ch) = (image.width(), image.height(), image.channels());
    let stride = image.stride();
    let mut data = image.into_data();
    let mirror_rows = |data: &mut [u8]| {
        for row in data.chunks_exact_mut(stride) {
            // Reversing the bytes reverses the pixels and, within each, the channels.
            row.reverse();
            for px in row.chunks_exact_mut(ch) {
                px.reverse();
            }
        }
    };
    let flip_rows = |data: &mut [u8]| {
        let rows = data.len() / stride;
        for top in 0..rows / 2 {
            let (upper, lower) = data.split_at_mut((rows - 1 - top) * stride);
            upper[top * stride..(top + 1) * stride].swap_with_slice(&mut lower[..stride]);
        }
    };
    match orientation {
        2 => mirror_rows(&mut data),
        3 => {
            mirror_rows(&mut data);
            flip_rows(&mut data);
        }
        _ => flip_rows(&mut data),
    }
    Bitmap::new(w, h, ch, data)
}

/// Orientations 5–8 swap width and height: into a new image.
fn transpose(image: Bitmap, orientation: u16) -> Result<Bitmap> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let ch = image.channels();
    let (ow, oh) = oriented_size(image.width(), image.height(), orientation);
    let src = image.data();
    let mut out = vec![0u8; src.len()];
    let src_index = |x: usize, y: usize| -> usize {
        let (sx, sy) = match orientation {
            5 => (y, x),
            6 => (y, h - 1 - x),
            7 => (w - 1 - y, h - 1 - x),
            _ => (w - 1 - y, x),
        };
        (sy * w + sx) * ch
    };
    for (y, row) in out.chunks_exact_mut(ow as usize * ch).enumerate() {
        for (x, px) in row.chunks_exact_mut(ch).enumerate() {
            let s = src_index(x, y);
            px.copy_from_slice(&src[s..s + ch]);
        }
    }
    Bitmap::new(ow, oh, ch, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 RGB image whose red channel numbers the pixels:
    /// ```text
    /// 1 2 3
    /// 4 5 6
    /// ```
    fn numbered() -> Bitmap {
        let data = (1..=6u8).flat_map(|v| [v, 0, 0]).collect();
        Bitmap::new(3, 2, 3, data).expect("valid")
    }

    fn reds(b: &Bitmap) -> Vec<u8> {
        b.data().chunks_exact(3).map(|p| p[0]).collect()
    }

    #[test]
    fn all_eight_orientations() {
        let cases: [(u16, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [1, 2, 3, 4, 5, 6]),
            (2, (3, 2), [3, 2, 1, 6, 5, 4]),
            (3, (3, 2), [6, 5, 4, 3, 2, 1]),
            (4, (3, 2), [4, 5, 6, 1, 2, 3]),
            (5, (2, 3), [1, 4, 2, 5, 3, 6]),
            (6, (2, 3), [4, 1, 5, 2, 6, 3]),
            (7, (2, 3), [6, 3, 5, 2, 4, 1]),
            (8, (2, 3), [3, 6, 2, 5, 1, 4]),
        ];
        for (o, size, expected) in cases {
            let out = apply(numbered(), o).expect("orients");
            assert_eq!((out.width(), out.height()), size, "orientation {o}");
            assert_eq!(reds(&out), expected, "orientation {o}");
            assert_eq!(oriented_size(3, 2, o), size);
        }
    }

    #[test]
    fn out_of_range_values_mean_upright() {
        assert_eq!(normalise(0), 1);
        assert_eq!(normalise(9), 1);
        assert_eq!(normalise(65535), 1);
        assert_eq!(normalise(6), 6);
        assert_eq!(apply(numbered(), 1).expect("ok"), numbered());
    }

    #[test]
    fn flips_in_place_keep_alpha() {
        let b = Bitmap::new(2, 2, 4, (1..=16).collect()).expect("valid");
        let out = apply(b.clone(), 3).expect("orients");
        assert_eq!(
            out.data(),
            &[13, 14, 15, 16, 9, 10, 11, 12, 5, 6, 7, 8, 1, 2, 3, 4]
        );
        let out = apply(b.clone(), 2).expect("orients");
        assert_eq!(
            out.data(),
            &[5, 6, 7, 8, 1, 2, 3, 4, 13, 14, 15, 16, 9, 10, 11, 12]
        );
        let out = apply(b, 4).expect("orients");
        assert_eq!(
            out.data(),
            &[9, 10, 11, 12, 13, 14, 15, 16, 1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn keeps_alpha() {
        let b = Bitmap::new(1, 2, 4, vec![1, 2, 3, 4, 5, 6, 7, 8]).expect("valid");
        let out = apply(b, 6).expect("orients");
        assert_eq!((out.width(), out.height()), (2, 1));
        assert_eq!(out.data(), &[5, 6, 7, 8, 1, 2, 3, 4]);
    }
}
