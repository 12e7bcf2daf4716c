//! The SSH connector: russh connections, host keys, OpenSSH config, identities and SFTP.

pub mod algorithms;
pub mod auth;
pub mod connection;
pub mod error;
pub mod known_hosts;
pub mod options;
pub mod quick_ack;
pub mod shell;
pub mod ssh_config;
pub mod stop;
pub mod target;
pub mod transport;

pub use connection::{HostKeyPolicy, SshSettings};
pub use error::SshError;
pub use options::{ConnectError, ConnectOptions};
pub use target::Target;
pub use transport::SshTransport;
