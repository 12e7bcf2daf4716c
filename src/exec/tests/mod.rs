//! Unit tests of the session and the runner over fake hosts (`transport::fake`), issue 32.

mod interrupt;
mod runner;
mod session;
