//! `tile-store`: serve pyramids, or tile an image on the command line.

use clap::Parser;
use std::process::ExitCode;
use tile_store::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(config) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(tile_store::AppError::from)
            .and_then(|runtime| {
                let result = runtime.block_on(tile_store::serve::run(*config));
                // Requests still running past --shutdown-timeout (a stuck store call,
                // a tiling job) are abandoned: dropping the runtime would wait for them.
                runtime.shutdown_timeout(std::time::Duration::from_millis(100));
                result
            }),
        Command::Tile(args) => tile_store::tile::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tile-store: {e}");
            ExitCode::FAILURE
        }
    }
}
