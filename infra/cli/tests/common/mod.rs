//! The stack these tests run: `tandem up` through the test kit.

#![allow(dead_code, unused_imports)]

use std::ops::{Deref, DerefMut};
pub use tandem_testkit::stack::{EAST, READ_TIMEOUT, SECRET, TOKEN, TestStack, WEST, header};

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_tandem");

/// A [`TestStack`] of `tandem`.
pub struct Stack(TestStack);

impl Stack {
    pub async fn start() -> Stack {
        Stack(TestStack::start(EXE).await)
    }

    /// A stack with more `up` flags.
    pub async fn start_with(extra: &[&str]) -> Stack {
        Stack(TestStack::start_with(EXE, extra).await)
    }

    /// A stack on a data directory the test prepared.
    pub async fn start_in(data: tempfile::TempDir) -> Stack {
        Stack(TestStack::start_in(EXE, data).await)
    }
}

impl Deref for Stack {
    type Target = TestStack;
    fn deref(&self) -> &TestStack {
        &self.0
    }
}

impl DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut TestStack {
        &mut self.0
    }
}
