//! The header of an AVIF file (HEIF container, ISO/IEC 23008-12): the primary image's size,
//! rotation and whether it has an alpha plane, read from the `meta` box without decoding.
//!
//! No AV1 decoder is built in (docs/pyramid-format.md says why): a browser decodes the pixels
//! with its own decoder and hands them to [`crate::Tiler::from_pixels`]. The header is read here
//! so that the size is checked against [`crate::Limits`] before the browser allocates anything.

use crate::error::{Error, Result};

/// What the container says about the primary image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AvifHeader {
    /// Stored width (before `irot`).
    pub width: u32,
    /// Stored height.
    pub height: u32,
    /// Anticlockwise quarter turns (`irot`), 0..=3.
    pub quarter_turns: u8,
    /// Whether some item is an alpha plane (`auxC` with an alpha URN).
    pub has_alpha: bool,
}

/// The alpha planes' `auxC` types: AV1's (AVIF) and the older HEVC one some writers use.
const ALPHA_URNS: [&[u8]; 2] = [
    b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
    b"urn:mpeg:hevc:2015:auxid:1",
];

/// One ISO-BMFF box: its type and its payload (after the header).
struct BmffBox<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

/// The boxes laid end to end in `bytes`; stops at the first that does not fit.
fn boxes(mut bytes: &[u8]) -> impl Iterator<Item = Result<BmffBox<'_>>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let item = next_box(bytes);
        match item {
            Ok((b, rest)) => {
                bytes = rest;
                Some(Ok(b))
            }
            Err(e) => {
                bytes = &[];
                Some(Err(e))
            }
        }
    })
}

fn truncated() -> Error {
    Error::Decode("the AVIF header is truncated".into())
}

fn be_u32(bytes: &[u8], at: usize) -> Result<u32> {
    let b = bytes.get(at..at.checked_add(4).ok_or_else(truncated)?);
    b.map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(truncated)
}

fn be_u16(bytes: &[u8], at: usize) -> Result<u16> {
    let b = bytes.get(at..at.checked_add(2).ok_or_else(truncated)?);
    b.map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(truncated)
}

fn next_box(bytes: &[u8]) -> Result<(BmffBox<'_>, &[u8])> {
    let size = be_u32(bytes, 0)?;
    let kind: [u8; 4] = bytes
        .get(4..8)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(truncated)?;
    let (header, size) = match size {
        0 => (8, bytes.len() as u64),
        1 => {
            let hi = u64::from(be_u32(bytes, 8)?);
            let lo = u64::from(be_u32(bytes, 12)?);
            (16, hi << 32 | lo)
        }
        n => (8, u64::from(n)),
    };
    let size = usize::try_from(size).map_err(|_| truncated())?;
    if size < header || size > bytes.len() {
        return Err(truncated());
    }
    Ok((
        BmffBox {
            kind,
            body: &bytes[header..size],
        },
        &bytes[size..],
    ))
}

/// The payload of a full box (after version and flags), with its version and flags.
fn full_box(body: &[u8]) -> Result<(u8, u32, &[u8])> {
    let vf = be_u32(body, 0)?;
    Ok(((vf >> 24) as u8, vf & 0x00FF_FFFF, &body[4..]))
}

/// Finds the first box of `kind` among `bytes`.
fn child<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>> {
    for b in boxes(bytes) {
        let b = b?;
        if &b.kind == kind {
            return Ok(Some(b.body));
        }
    }
    Ok(None)
}

fn missing(what: &str) -> Error {
    Error::Decode(format!("the AVIF file has no {what}"))
}

/// Reads the primary image's header from `bytes`, a file that starts with an `ftyp` box.
pub(crate) fn header(bytes: &[u8]) -> Result<AvifHeader> {
    let meta = child(bytes, b"meta")?.ok_or_else(|| missing("meta box"))?;
    let (_, _, meta) = full_box(meta)?;
    let pitm = child(meta, b"pitm")?.ok_or_else(|| missing("primary item"))?;
    let primary = match full_box(pitm)? {
        (0, _, p) => u32::from(be_u16(p, 0)?),
        (_, _, p) => be_u32(p, 0)?,
    };
    let iprp = child(meta, b"iprp")?.ok_or_else(|| missing("item properties"))?;
    let ipco = child(iprp, b"ipco")?.ok_or_else(|| missing("property container"))?;
    let properties = boxes(ipco).collect::<Result<Vec<_>>>()?;
    let has_alpha = properties.iter().any(|p| {
        &p.kind == b"auxC"
            && full_box(p.body).is_ok_and(|(_, _, urn)| {
                let urn = urn.split(|&b| b == 0).next().unwrap_or_default();
                ALPHA_URNS.contains(&urn)
            })
    });
    // The primary item's properties, by their 1-based index into `ipco`, from every `ipma`.
    let mut size = None;
    let mut quarter_turns = 0;
    for b in boxes(iprp) {
        let b = b?;
        if &b.kind != b"ipma" {
            continue;
        }
        let (version, flags, body) = full_box(b.body)?;
        let count = be_u32(body, 0)?;
        let mut at = 4usize;
        for _ in 0..count {
            let item = if version < 1 {
                let id = u32::from(be_u16(body, at)?);
                at += 2;
                id
            } else {
                let id = be_u32(body, at)?;
                at += 4;
                id
            };
            let associations = *body.get(at).ok_or_else(truncated)?;
            at += 1;
            for _ in 0..associations {
                let index = if flags & 1 == 1 {
                    let v = be_u16(body, at)? & 0x7FFF;
                    at += 2;
                    usize::from(v)
                } else {
                    let v = body.get(at).ok_or_else(truncated)? & 0x7F;
                    at += 1;
                    usize::from(v)
                };
                if item != primary || index == 0 {
                    continue;
                }
                let Some(p) = properties.get(index - 1) else {
                    return Err(Error::Decode(format!(
                        "the AVIF file names property {index} of {}",
                        properties.len()
                    )));
                };
                match &p.kind {
                    b"ispe" => {
                        let (_, _, dims) = full_box(p.body)?;
                        size = Some((be_u32(dims, 0)?, be_u32(dims, 4)?));
                    }
                    b"irot" => {
                        quarter_turns = p.body.first().ok_or_else(truncated)? & 3;
                    }
                    _ => {}
                }
            }
        }
    }
    let (width, height) = size.ok_or_else(|| missing("image size (ispe)"))?;
    Ok(AvifHeader {
        width,
        height,
        quarter_turns,
        has_alpha,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn bmff(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = (u32::from(version) << 24 | flags).to_be_bytes().to_vec();
        b.extend_from_slice(body);
        bmff(kind, &b)
    }

    /// A minimal AVIF header: item 1 is the primary `width`×`height` image, turned by `irot`;
    /// item 2 its alpha plane when `alpha`. No pixel data.
    pub(crate) fn avif(width: u32, height: u32, irot: Option<u8>, alpha: bool) -> Vec<u8> {
        let mut ispe = width.to_be_bytes().to_vec();
        ispe.extend_from_slice(&height.to_be_bytes());
        // Property 1 is a decoy size for the alpha item, so that only the association counts.
        let mut ipco = full(b"ispe", 0, 0, &[0, 0, 0, 7, 0, 0, 0, 7]);
        ipco.extend(full(b"ispe", 0, 0, &ispe));
        let mut primary = vec![0x82]; // essential bit + property 2
        if let Some(turns) = irot {
            ipco.extend(bmff(b"irot", &[turns]));
            primary.push(3);
        }
        let mut ipma_body = if alpha { 2u32 } else { 1 }.to_be_bytes().to_vec();
        ipma_body.extend_from_slice(&1u16.to_be_bytes());
        ipma_body.push(primary.len() as u8);
        ipma_body.extend(primary);
        if alpha {
            let mut aux = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha".to_vec();
            aux.push(0);
            ipco.extend(full(b"auxC", 0, 0, &aux));
            let aux_index = if irot.is_some() { 4 } else { 3 };
            ipma_body.extend_from_slice(&2u16.to_be_bytes());
            ipma_body.extend_from_slice(&[2, 1, aux_index]);
        }
        let mut iprp = bmff(b"ipco", &ipco);
        iprp.extend(full(b"ipma", 0, 0, &ipma_body));
        let mut meta = full(b"hdlr", 0, 0, b"\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
        meta.extend(full(b"pitm", 0, 0, &1u16.to_be_bytes()));
        meta.extend(bmff(b"iprp", &iprp));
        let mut file = bmff(b"ftyp", b"avif\0\0\0\0mif1avif");
        file.extend(full(b"meta", 0, 0, &meta));
        file.extend(bmff(b"mdat", &[0; 16]));
        file
    }

    #[test]
    fn reads_the_primary_items_size_turn_and_alpha() {
        assert_eq!(
            header(&avif(300, 200, None, false)).expect("header"),
            AvifHeader {
                width: 300,
                height: 200,
                quarter_turns: 0,
                has_alpha: false
            }
        );
        assert_eq!(
            header(&avif(300, 200, Some(3), true)).expect("header"),
            AvifHeader {
                width: 300,
                height: 200,
                quarter_turns: 3,
                has_alpha: true
            }
        );
    }

    #[test]
    fn refuses_damaged_headers() {
        let whole = avif(300, 200, None, false);
        for cut in [12, 40, 80, whole.len() - 30] {
            assert!(
                matches!(header(&whole[..cut]), Err(Error::Decode(_))),
                "cut at {cut}"
            );
        }
        // A box that claims more than the file holds.
        let mut lying = whole.clone();
        lying[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(header(&lying), Err(Error::Decode(_))));
    }
}
