//! `tile-store`: serve pyramids, or tile an image on the command line.

fn main() {}
