//! Empty: cargo resolves a package's build dependencies (here syn's features) only when it has a
//! build script.

fn main() {}
