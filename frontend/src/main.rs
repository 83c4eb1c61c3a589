//! The console's entry point: trunk builds this binary to wasm; everything else is in the library.

fn main() {
    tandem_frontend::mount();
}
