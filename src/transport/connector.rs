//! How the hosts of one run are reached: this machine, or SSH with settings loaded once.

use std::path::PathBuf;
use std::sync::Arc;

use super::round_trip::RoundTrip;
use super::ssh::{ConnectError, ConnectOptions, SshSettings, SshTransport, Target};
use super::{LocalTransport, Transport};

/// How hosts are reached.
pub enum Connector {
    /// This machine; commands start in the given folder.
    Local(PathBuf),
    /// SSH with the run's settings.
    Ssh(Arc<SshSettings>),
    /// Unit tests' fake hosts by address (`transport::fake`); an address without one is
    /// unreachable.
    #[cfg(test)]
    Fake(std::collections::HashMap<String, Arc<super::fake::FakeTransport>>),
}

impl Connector {
    /// An SSH connector for hosts at `addresses` (`(name, address)` pairs), `at_once` of them
    /// at a time; identities and known_hosts load once, here, so a bad address or key file
    /// stops the run before any host. Its connections note their round trips in `round_trip`.
    pub fn ssh(
        options: &ConnectOptions,
        addresses: &[(&str, &str)],
        at_once: usize,
        round_trip: Arc<RoundTrip>,
    ) -> Result<Self, ConnectError> {
        let targets = addresses
            .iter()
            .map(|(name, address)| {
                Target::parse(address).map_err(|message| ConnectError::Address {
                    host: name.to_string(),
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut settings = options.settings(&targets, at_once)?;
        settings.round_trip = round_trip;
        Ok(Connector::Ssh(Arc::new(settings)))
    }

    /// The transport to the host at `address`, or why the address is unusable.
    pub fn transport(&self, address: &str) -> Result<Arc<dyn Transport>, String> {
        match self {
            Connector::Local(root) => Ok(Arc::new(LocalTransport::new(root.clone()))),
            Connector::Ssh(settings) => {
                let target = Target::parse(address)?;
                Ok(Arc::new(SshTransport::new(target, settings.clone())))
            }
            #[cfg(test)]
            Connector::Fake(hosts) => match hosts.get(address) {
                Some(host) => Ok(host.clone()),
                None => Err(format!("no fake host at {address}")),
            },
        }
    }
}
