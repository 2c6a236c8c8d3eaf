//! `tile-store tile`: writes a Deep Zoom pyramid where `vips dzsave` would, with
//! the same tiler the browser runs.

use crate::config::TileArgs;
use crate::error::{AppError, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::BufReader;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tiler_wasm::{Options, Walk};

/// Where `vips dzsave <image> <out_prefix>` puts the manifest and the tiles.
///
/// vips strips a `.dz` suffix, writes a zip container for `.zip` and `.szi`
/// (not supported here) and keeps any other name whole: `out.dzi` gives
/// `out.dzi.dzi`, as with vips.
pub fn output_paths(out_prefix: &Path) -> Result<(PathBuf, PathBuf)> {
    let text = out_prefix.as_os_str().to_string_lossy();
    let lower = text.to_ascii_lowercase();
    if lower.ends_with(".zip") || lower.ends_with(".szi") {
        return Err(AppError::bad_request(
            "unsupported_output",
            format!("{text}: zip containers are not supported; give a plain prefix"),
        ));
    }
    let base = match text.strip_suffix(".dz") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => text.into_owned(),
    };
    if base.is_empty() || base.ends_with('/') {
        return Err(AppError::bad_request(
            "unsupported_output",
            "the output prefix needs a file name, e.g. out/photo",
        ));
    }
    Ok((
        PathBuf::from(format!("{base}.dzi")),
        PathBuf::from(format!("{base}_files")),
    ))
}

/// Runs the command.
pub fn run(args: &TileArgs) -> Result<()> {
    let (dzi_path, files_dir) = output_paths(&args.out_prefix)?;
    let read_error = |e: std::io::Error| {
        AppError::bad_request(
            "input",
            format!("cannot read {}: {e}", args.image.display()),
        )
    };
    let options = Options {
        format: args.format,
        quality: args.quality,
        tile_size: args.tile_size,
        overlap: args.overlap,
        ..Options::default()
    };
    let in_context = |e: tiler_wasm::Error| {
        AppError::bad_request(e.code(), format!("{}: {e}", args.image.display()))
    };
    // TIFF and BigTIFF stream from the file in memory bounded by the width; anything else is
    // read and decoded whole.
    let file = std::fs::File::open(&args.image).map_err(read_error)?;
    let tiler = match Walk::streamed(BufReader::new(file), &options).map_err(in_context)? {
        Some(streamed) => streamed,
        None => {
            let source = std::fs::read(&args.image).map_err(read_error)?;
            Walk::whole(&source, &options).map_err(in_context)?
        }
    };
    let extension = tiler.format().extension();
    let total = tiler.layout().tile_count();

    let progress = ProgressBar::with_draw_target(Some(total), draw_target());
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} tiles ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message(format!("{}", args.image.display()));

    let write_error = |path: &Path, e: std::io::Error| {
        AppError::bad_request("output", format!("cannot write {}: {e}", path.display()))
    };
    for level in 0..tiler.layout().level_count() {
        let level_dir = files_dir.join(level.to_string());
        std::fs::create_dir_all(&level_dir).map_err(|e| write_error(&level_dir, e))?;
    }
    let dzi = tiler.dzi().to_xml();
    // Tiles are encoded and written on every core as they are finished; each call comes from
    // one of them. Nothing here needs a tile twice.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tiler
        .run(threads, |addr, bytes| -> Result<(), AppError> {
            let path = files_dir
                .join(addr.level.to_string())
                .join(format!("{}_{}.{extension}", addr.col, addr.row));
            std::fs::write(&path, bytes).map_err(|e| write_error(&path, e))?;
            progress.inc(1);
            Ok(())
        })
        .map_err(|e| match e {
            AppError::Tiler(t) => in_context(t),
            other => other,
        })?;
    // Written last, so that a manifest on disk means the tiles are all there.
    std::fs::write(&dzi_path, dzi).map_err(|e| write_error(&dzi_path, e))?;
    progress.finish_and_clear();
    Ok(())
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_follow_vips() {
        let paths = |p: &str| output_paths(Path::new(p)).expect("valid prefix");
        assert_eq!(
            paths("out/photo"),
            (
                PathBuf::from("out/photo.dzi"),
                PathBuf::from("out/photo_files")
            )
        );
        assert_eq!(paths("photo.dz").0, PathBuf::from("photo.dzi"));
        assert_eq!(paths("photo.dzi").0, PathBuf::from("photo.dzi.dzi"));
        assert!(output_paths(Path::new("photo.zip")).is_err());
        assert!(output_paths(Path::new("dir/")).is_err());
    }
}
