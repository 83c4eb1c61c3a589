//! No code: a dependency of `tandem-local` that turns on the features the whole `tandem` build
//! turns on in the crates both use, so `cargo xtask dev` and `cargo build --release --bin
//! tandem` reuse one another's artifacts (see Cargo.toml).
