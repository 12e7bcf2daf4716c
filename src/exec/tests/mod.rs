//! Unit tests of the session and the runner over fake hosts (`transport::fake`), issue 32.

mod runner;
mod session;
