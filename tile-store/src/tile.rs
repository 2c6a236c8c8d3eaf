//! `tile-store tile`: writes a Deep Zoom pyramid where `vips dzsave` would, with
//! the same tiler the browser runs.

use crate::config::{Container, TileArgs};
use crate::error::{AppError, Result};
use crate::szi::SziWriter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::BufReader;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tiler_wasm::{Options, Walk};

/// Where `vips dzsave <image> <out_prefix>` puts the pyramid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `<base>.dzi` and the folder `<base>_files`.
    Folder {
        /// The manifest.
        dzi: PathBuf,
        /// The folder of level folders.
        files: PathBuf,
    },
    /// One archive whose entries sit under `<name>/`, as `<name>/<name>.dzi` and
    /// `<name>/<name>_files/...`.
    Szi {
        /// The archive.
        archive: PathBuf,
        /// The file name of the base, without folders.
        name: String,
    },
}

/// Where `vips dzsave <image> <out_prefix>` puts the manifest and the tiles.
///
/// vips strips a `.dz` suffix, writes a `.szi` archive for a `.szi` suffix (or `container`
/// [`Container::Szi`]), a zip container of another layout for `.zip` (not supported here), and
/// keeps any other name whole: `out.dzi` gives `out.dzi.dzi`, as with vips.
pub fn output_paths(out_prefix: &Path, container: Container) -> Result<Output> {
    let text = out_prefix.as_os_str().to_string_lossy();
    let lower = text.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        return Err(AppError::bad_request(
            "unsupported_output",
            format!("{text}: zip containers are not supported; give a plain prefix or .szi"),
        ));
    }
    let szi = container == Container::Szi || lower.ends_with(".szi");
    let base = match text.strip_suffix(".dz") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        // `.szi` in any case is four ASCII bytes, so this cut is on a char boundary.
        _ if lower.ends_with(".szi") => text[..text.len() - 4].to_owned(),
        _ => text.into_owned(),
    };
    if base.is_empty() || base.ends_with('/') {
        return Err(AppError::bad_request(
            "unsupported_output",
            "the output prefix needs a file name, e.g. out/photo",
        ));
    }
    if szi {
        let name = Path::new(&base)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Output::Szi {
            archive: PathBuf::from(format!("{base}.szi")),
            name,
        });
    }
    Ok(Output::Folder {
        dzi: PathBuf::from(format!("{base}.dzi")),
        files: PathBuf::from(format!("{base}_files")),
    })
}

/// Where the tiles go while they are made.
enum Sink {
    Folder {
        dzi: PathBuf,
        files: PathBuf,
    },
    Szi {
        writer: SziWriter,
        archive: PathBuf,
        name: String,
    },
}

/// Runs the command.
pub fn run(args: &TileArgs) -> Result<()> {
    let output = output_paths(&args.out_prefix, args.container)?;
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
    // TIFF, BigTIFF and non-interlaced PNG stream from the file in memory bounded by the
    // width; anything else is read and decoded whole.
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
    let sink = match output {
        Output::Folder { dzi, files } => {
            for level in 0..tiler.layout().level_count() {
                let level_dir = files.join(level.to_string());
                std::fs::create_dir_all(&level_dir).map_err(|e| write_error(&level_dir, e))?;
            }
            Sink::Folder { dzi, files }
        }
        Output::Szi { archive, name } => {
            if let Some(parent) = archive.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
            }
            let writer = SziWriter::create(&archive).map_err(|e| write_error(&archive, e))?;
            Sink::Szi {
                writer,
                archive,
                name,
            }
        }
    };
    let dzi = tiler.dzi().to_xml();
    // Tiles are encoded and written on every core as they are finished; each call comes from
    // one of them. Nothing here needs a tile twice.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tiler
        .run(threads, |addr, bytes| -> Result<(), AppError> {
            let tile = format!("{}/{}_{}.{extension}", addr.level, addr.col, addr.row);
            match &sink {
                Sink::Szi {
                    writer,
                    archive,
                    name,
                } => writer
                    .add(crate::szi::tile_entry(name, &tile), bytes)
                    .map_err(|e| write_error(archive, e))?,
                Sink::Folder { files, .. } => {
                    let path = files.join(tile);
                    std::fs::write(&path, bytes).map_err(|e| write_error(&path, e))?;
                }
            }
            progress.inc(1);
            Ok(())
        })
        .map_err(|e| match e {
            AppError::Tiler(t) => in_context(t),
            other => other,
        })?;
    // Written last, so that a manifest means the tiles are all there.
    match sink {
        Sink::Szi {
            writer,
            archive,
            name,
        } => writer
            .add(crate::szi::manifest_entry(&name), dzi.into_bytes())
            .and_then(|()| writer.finish())
            .map_err(|e| write_error(&archive, e))?,
        Sink::Folder { dzi: path, .. } => {
            std::fs::write(&path, dzi).map_err(|e| write_error(&path, e))?;
        }
    }
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
        let paths = |p: &str| output_paths(Path::new(p), Container::Fs).expect("valid prefix");
        let folder = |dzi: &str, files: &str| Output::Folder {
            dzi: PathBuf::from(dzi),
            files: PathBuf::from(files),
        };
        assert_eq!(
            paths("out/photo"),
            folder("out/photo.dzi", "out/photo_files")
        );
        assert_eq!(paths("photo.dz"), folder("photo.dzi", "photo_files"));
        assert_eq!(
            paths("photo.dzi"),
            folder("photo.dzi.dzi", "photo.dzi_files")
        );
        let szi = |archive: &str, name: &str| Output::Szi {
            archive: PathBuf::from(archive),
            name: name.to_owned(),
        };
        assert_eq!(paths("out/photo.szi"), szi("out/photo.szi", "photo"));
        assert_eq!(
            output_paths(Path::new("out/photo"), Container::Szi).expect("valid"),
            szi("out/photo.szi", "photo")
        );
        assert!(output_paths(Path::new("photo.zip"), Container::Fs).is_err());
        assert!(output_paths(Path::new("dir/"), Container::Fs).is_err());
        assert!(output_paths(Path::new(".szi"), Container::Fs).is_err());
    }
}
