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

/// Turns the stored image upright.
///
/// For each output pixel `(x, y)` of the `W`×`H` result the source pixel is
/// (with `w`×`h` the stored size):
/// 2 mirror `(w−1−x, y)`; 3 rotate 180° `(w−1−x, h−1−y)`; 4 flip `(x, h−1−y)`;
/// 5 transpose `(y, x)`; 6 rotate 90° clockwise `(y, h−1−x)`;
/// 7 transverse `(w−1−y, h−1−x)`; 8 rotate 90° anticlockwise `(w−1−y, x)`.
pub fn apply(image: Bitmap, orientation: u16) -> Result<Bitmap> {
    if !(2..=8).contains(&orientation) {
        return Ok(image);
    }
    let (w, h) = (image.width() as usize, image.height() as usize);
    let ch = image.channels();
    let (ow, oh) = oriented_size(image.width(), image.height(), orientation);
    let src = image.data();
    let mut out = vec![0u8; src.len()];
    let src_index = |x: usize, y: usize| -> usize {
        let (sx, sy) = match orientation {
            2 => (w - 1 - x, y),
            3 => (w - 1 - x, h - 1 - y),
            4 => (x, h - 1 - y),
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
    fn keeps_alpha() {
        let b = Bitmap::new(1, 2, 4, vec![1, 2, 3, 4, 5, 6, 7, 8]).expect("valid");
        let out = apply(b, 6).expect("orients");
        assert_eq!((out.width(), out.height()), (2, 1));
        assert_eq!(out.data(), &[5, 6, 7, 8, 1, 2, 3, 4]);
    }
}
