//! Services under systemd, supervisor or runit: running or stopped, enabled or not, and
//! reloads or restarts requested by changes, run once when the goal ends (handlers).

use crate::exec::session::{HostError, HostSession};
use crate::shell::quote;

use super::{fail, OpResult};

/// A process manager weft drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceManager {
    /// `systemctl`.
    Systemd,
    /// `supervisorctl`.
    Supervisor,
    /// `sv` with services in `/etc/sv`, enabled by a link in `/etc/service`.
    Runit,
}

impl ServiceManager {
    /// Parses `systemd`, `supervisor` or `runit`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "systemd" => Ok(ServiceManager::Systemd),
            "supervisor" => Ok(ServiceManager::Supervisor),
            "runit" => Ok(ServiceManager::Runit),
            other => Err(format!(
                "manager `{other}` is not `systemd`, `supervisor` or `runit`"
            )),
        }
    }

    /// The name used in options and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceManager::Systemd => "systemd",
            ServiceManager::Supervisor => "supervisor",
            ServiceManager::Runit => "runit",
        }
    }
}

/// What a `service` call wants; `None` leaves that side as it is.
#[derive(Debug, Clone, Default)]
pub struct ServiceSpec {
    /// `Some(true)`: running; `Some(false)`: stopped.
    pub running: Option<bool>,
    /// Started at boot.
    pub enabled: Option<bool>,
    /// The manager; by default systemd when it runs the host, else supervisor, else runit.
    pub manager: Option<ServiceManager>,
    /// supervisor's config file, when not in a place `supervisorctl` looks by itself.
    pub config: Option<String>,
}

/// The `supervisorctl` command line, with `-c CONFIG` when one is given.
fn supervisorctl(config: Option<&str>) -> String {
    match config {
        Some(config) => format!("supervisorctl -c {}", quote(config)),
        None => "supervisorctl".into(),
    }
}

/// The manager to use for the host when none is named.
pub fn detect(session: &HostSession) -> Result<ServiceManager, HostError> {
    let out = session.probe(
        "if [ -d /run/systemd/system ]; then echo systemd; \
         elif command -v supervisorctl >/dev/null 2>&1; then echo supervisor; \
         elif command -v sv >/dev/null 2>&1; then echo runit; fi",
    )?;
    ServiceManager::parse(out.stdout.trim())
        .map_err(|_| fail("service", "no systemd, supervisor or runit on this host"))
}

fn is_running(
    session: &HostSession,
    manager: ServiceManager,
    name: &str,
    config: Option<&str>,
) -> Result<bool, HostError> {
    let q = quote(name);
    let out = match manager {
        ServiceManager::Systemd => session.probe(&format!("systemctl is-active --quiet -- {q}"))?,
        ServiceManager::Supervisor => session.probe(&format!(
            "{} status {q} | grep -q RUNNING",
            supervisorctl(config)
        ))?,
        ServiceManager::Runit => session.probe(&format!("sv status {q} | grep -q '^run:'"))?,
    };
    Ok(out.code == 0)
}

fn is_enabled(
    session: &HostSession,
    manager: ServiceManager,
    name: &str,
) -> Result<bool, HostError> {
    let q = quote(name);
    let out = match manager {
        ServiceManager::Systemd => {
            session.probe(&format!("systemctl is-enabled --quiet -- {q}"))?
        }
        ServiceManager::Runit => session.probe(&format!("test -L /etc/service/{q}"))?,
        ServiceManager::Supervisor => {
            return Err(fail(
                "service",
                "supervisor programs are enabled by their config (`autostart`), not by weft",
            ))
        }
    };
    Ok(out.code == 0)
}

/// The command that runs `action` (start, stop, restart, reload) on `name`.
pub fn action_command(
    manager: ServiceManager,
    name: &str,
    action: &str,
    config: Option<&str>,
) -> String {
    let q = quote(name);
    match (manager, action) {
        (ServiceManager::Systemd, action) => format!("systemctl {action} -- {q}"),
        // supervisor has no reload of one program; a restart is the closest.
        (ServiceManager::Supervisor, "reload") => format!("{} restart {q}", supervisorctl(config)),
        (ServiceManager::Supervisor, action) => format!("{} {action} {q}", supervisorctl(config)),
        (ServiceManager::Runit, "start") => format!("sv up {q}"),
        (ServiceManager::Runit, "stop") => format!("sv down {q}"),
        (ServiceManager::Runit, "reload") => format!("sv hup {q}"),
        (ServiceManager::Runit, action) => format!("sv {action} {q}"),
    }
}

/// Brings service `name` to `spec`.
pub fn service(session: &HostSession, name: &str, spec: &ServiceSpec) -> OpResult {
    let manager = match spec.manager {
        Some(m) => m,
        None => detect(session)?,
    };
    let mut reasons = Vec::new();
    if let Some(enabled) = spec.enabled {
        if is_enabled(session, manager, name)? != enabled {
            let command = match (manager, enabled) {
                (ServiceManager::Systemd, true) => format!("systemctl enable -- {}", quote(name)),
                (ServiceManager::Systemd, false) => format!("systemctl disable -- {}", quote(name)),
                (_, true) => format!("ln -sfn /etc/sv/{n} /etc/service/{n}", n = quote(name)),
                (_, false) => format!("rm -f /etc/service/{}", quote(name)),
            };
            session.act(&command)?;
            reasons.push(if enabled { "enabled" } else { "disabled" });
        }
    }
    if let Some(running) = spec.running {
        let config = spec.config.as_deref();
        if is_running(session, manager, name, config)? != running {
            let action = if running { "start" } else { "stop" };
            session.act(&action_command(manager, name, action, config))?;
            reasons.push(if running { "started" } else { "stopped" });
        }
    }
    let step = if reasons.is_empty() {
        format!("service {name}")
    } else {
        format!("service {name} ({})", reasons.join(", "))
    };
    Ok(session.report(&step, !reasons.is_empty()))
}

/// Runs `action` on `name` now (a restart or reload always changes something).
pub fn act_now(
    session: &HostSession,
    name: &str,
    action: &str,
    manager: Option<ServiceManager>,
    config: Option<&str>,
) -> OpResult {
    let manager = match manager {
        Some(m) => m,
        None => detect(session)?,
    };
    session.act(&action_command(manager, name, action, config))?;
    Ok(session.report(&format!("service {name} ({action})"), true))
}
