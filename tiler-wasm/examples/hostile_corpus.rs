//! Writes the hostile-input corpus (see `tests/common/corpus.rs`) into a folder,
//! with a `corpus.json` manifest: `cargo run --release -p tiler-wasm --example
//! hostile_corpus -- DIR`. The end-to-end tests feed these files to the worker.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/corpus.rs"]
#[allow(dead_code)]
mod corpus;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .expect("usage: hostile_corpus DIR");
    corpus::write(std::path::Path::new(&dir)).expect("writes the corpus");
}
