//! The stack these tests run: `tandem` up through the test kit.

#![allow(dead_code, unused_imports)]

pub use tandem_testkit::stack::{Binary, EAST, READ_TIMEOUT, SECRET, TOKEN, WEST, header};

/// The binary under test.
pub struct Tandem;

impl Binary for Tandem {
    const EXE: &'static str = env!("CARGO_BIN_EXE_tandem");
}

/// The binary's path, for tests that run its other commands.
pub const EXE: &str = Tandem::EXE;

/// A stack of `tandem`, with the test kit's helpers.
pub type Stack = tandem_testkit::stack::TestStack<Tandem>;
