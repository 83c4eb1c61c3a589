//! The stack these tests run: `tandem-local` up through the test kit.

#![allow(dead_code, unused_imports)]

pub use tandem_testkit::stack::{Binary, EAST, READ_TIMEOUT, SECRET, TOKEN, WEST, header};

tandem_testkit::binary_under_test!(TandemLocal, env!("CARGO_BIN_EXE_tandem-local"));
