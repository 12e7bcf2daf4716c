//! Services under systemd, supervisor, runit or, on hosts without an init system, their own
//! commands: running or stopped, enabled or not, and reloads or restarts requested by changes,
//! run once when the goal ends (handlers).

use crate::exec::session::{HostError, HostSession};
use crate::shell::quote;

use super::daemons::{self, DaemonCommands};
use super::{facts, fail, OpResult};

/// A process manager weft drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceManager {
    /// `systemctl`.
    Systemd,
    /// `supervisorctl`.
    Supervisor,
    /// `sv` with services in `/etc/sv`, enabled by a link in `/etc/service`.
    Runit,
    /// The daemon's own commands, which the script gives (`commands`), on hosts without an
    /// init system.
    Direct,
}

impl ServiceManager {
    /// Parses `systemd`, `supervisor`, `runit` or `direct`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "systemd" => Ok(ServiceManager::Systemd),
            "supervisor" => Ok(ServiceManager::Supervisor),
            "runit" => Ok(ServiceManager::Runit),
            "direct" => Ok(ServiceManager::Direct),
            other => Err(format!(
                "manager `{other}` is not `systemd`, `supervisor`, `runit` or `direct`"
            )),
        }
    }

    /// The name used in options and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceManager::Systemd => "systemd",
            ServiceManager::Supervisor => "supervisor",
            ServiceManager::Runit => "runit",
            ServiceManager::Direct => "direct",
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
    /// How the service is driven; see [`Driver::of`] for the default.
    pub driver: DriverSpec,
    /// Under systemd, run `systemctl daemon-reload` first when systemd says the unit's files
    /// changed since it read them (or it has not loaded the unit yet).
    pub daemon_reload: bool,
}

/// How a service is reached, as a script names it: all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverSpec {
    /// The manager; by default systemd when the host's init is systemd, else the daemon's own
    /// commands when the script gave them, else supervisor, else runit.
    pub manager: Option<ServiceManager>,
    /// supervisor's config file, when not in a place `supervisorctl` looks by itself.
    pub config: Option<String>,
    /// The daemon's own commands, which its script gives.
    pub commands: Option<DaemonCommands>,
}

/// A service's manager, resolved for one host.
#[derive(Debug, Clone)]
pub enum Driver {
    /// `systemctl`.
    Systemd,
    /// `supervisorctl`, with `-c CONFIG` when a config is named.
    Supervisor(Option<String>),
    /// `sv`.
    Runit,
    /// The daemon's own commands.
    Direct(DaemonCommands),
}

impl Driver {
    /// Resolves `spec` for service `name` on the host. Whether systemd runs the host is the
    /// `init` fact, read once per goal.
    pub fn of(session: &HostSession, name: &str, spec: &DriverSpec) -> Result<Self, HostError> {
        let direct = || {
            spec.commands.clone().ok_or_else(|| {
                fail(
                    "service",
                    format!(
                        "manager `direct` runs `{name}` by its own commands: {}",
                        daemons::hint(name)
                    ),
                )
            })
        };
        let manager = match spec.manager {
            Some(manager) => manager,
            None => detect(session, name, spec.commands.is_some())?,
        };
        Ok(match manager {
            ServiceManager::Systemd => Driver::Systemd,
            ServiceManager::Supervisor => Driver::Supervisor(spec.config.clone()),
            ServiceManager::Runit => Driver::Runit,
            ServiceManager::Direct => Driver::Direct(direct()?),
        })
    }

    fn supervisorctl(config: Option<&str>) -> String {
        match config {
            Some(config) => format!("supervisorctl -c {}", quote(config)),
            None => "supervisorctl".into(),
        }
    }

    /// The command that exits 0 when `name` runs.
    fn status_command(&self, name: &str) -> String {
        let q = quote(name);
        match self {
            Driver::Systemd => format!("systemctl is-active --quiet -- {q}"),
            Driver::Supervisor(config) => format!(
                "{} status {q} | grep -q RUNNING",
                Self::supervisorctl(config.as_deref())
            ),
            Driver::Runit => format!("sv status {q} | grep -q '^run:'"),
            Driver::Direct(commands) => commands.status.clone(),
        }
    }

    /// The command that runs `action` (start, stop, restart, reload) on `name`; a restart of
    /// a daemon driven by its own commands is a stop when it runs, then a start.
    pub fn action_command(&self, name: &str, action: &str) -> String {
        let q = quote(name);
        match (self, action) {
            (Driver::Systemd, action) => format!("systemctl {action} -- {q}"),
            // supervisor has no reload of one program: a HUP is one for the daemons it runs
            // (gunicorn starts new workers on the new code while the old ones finish).
            (Driver::Supervisor(config), "reload") => {
                format!("{} signal HUP {q}", Self::supervisorctl(config.as_deref()))
            }
            (Driver::Supervisor(config), action) => {
                format!("{} {action} {q}", Self::supervisorctl(config.as_deref()))
            }
            (Driver::Runit, "start") => format!("sv up {q}"),
            (Driver::Runit, "stop") => format!("sv down {q}"),
            (Driver::Runit, "reload") => format!("sv hup {q}"),
            (Driver::Runit, action) => format!("sv {action} {q}"),
            (Driver::Direct(c), "start") => c.start.clone(),
            (Driver::Direct(c), "stop") => c.stop.clone(),
            (Driver::Direct(c), "reload") => c.reload.clone(),
            // Each command in its own `sh -c`: one may `exit` (nginx's stop does when it is
            // gone), and a `#` or an unbalanced `)` in it must not reach into the others.
            (Driver::Direct(c), _) => format!(
                "if sh -c {} >/dev/null 2>&1; then sh -c {}; fi && sh -c {}",
                quote(&c.status),
                quote(&c.stop),
                quote(&c.start)
            ),
        }
    }
}

/// The manager to use for service `name` when none is named: systemd when the host's `init`
/// fact says it runs the host; else the daemon's own commands when the script gave them
/// (`commands`); else, unless `lib/daemons` knows `name` (a daemon, not a supervisor program),
/// supervisor or runit when installed.
pub fn detect(
    session: &HostSession,
    name: &str,
    commands: bool,
) -> Result<ServiceManager, HostError> {
    let facts = facts::basic(session)?;
    if facts.get("init").and_then(|v| v.as_str()) == Some("systemd") {
        return Ok(ServiceManager::Systemd);
    }
    if commands {
        return Ok(ServiceManager::Direct);
    }
    // A daemon the stdlib has commands for is never a supervisor program or runit service
    // unless the script names that manager: asking supervisor would only fail with its
    // "no such process".
    if daemons::KNOWN.iter().any(|(service, _)| *service == name) {
        return Err(fail(
            "service",
            format!(
                "no init system on this host runs `{name}`, and no `commands` say how it \
                 starts and stops: {}",
                daemons::hint(name)
            ),
        ));
    }
    let out = session.probe(
        "if command -v supervisorctl >/dev/null 2>&1; then echo supervisor; \
         elif command -v sv >/dev/null 2>&1; then echo runit; fi",
    )?;
    ServiceManager::parse(out.stdout.trim()).map_err(|_| {
        fail(
            "service",
            format!(
                "no init system, supervisor or runit on this host runs `{name}`, and no \
                 `commands` say how it starts and stops: {}",
                daemons::hint(name)
            ),
        )
    })
}

/// Whether service `name` runs. With `settle` on systemd, first waits (at most a minute) until
/// the host has finished booting: a unit that starts at boot and is taken for running while
/// its start job still runs would never read a config written meanwhile.
fn is_running(
    session: &HostSession,
    driver: &Driver,
    name: &str,
    settle: bool,
) -> Result<bool, HostError> {
    let status = driver.status_command(name);
    let command = match driver {
        Driver::Systemd if settle => {
            format!("timeout 60 systemctl is-system-running --wait >/dev/null 2>&1; {status}")
        }
        _ => status,
    };
    Ok(session.probe(&command)?.code == 0)
}

/// Whether service `name` runs, without changing anything.
pub fn running(session: &HostSession, name: &str, spec: &DriverSpec) -> Result<bool, HostError> {
    let driver = Driver::of(session, name, spec)?;
    is_running(session, &driver, name, false)
}

/// Whether `name` starts at boot; `None` where nothing starts at boot (no init system).
fn is_enabled(
    session: &HostSession,
    driver: &Driver,
    name: &str,
) -> Result<Option<bool>, HostError> {
    let q = quote(name);
    let out = match driver {
        Driver::Systemd => session.probe(&format!("systemctl is-enabled --quiet -- {q}"))?,
        Driver::Runit => session.probe(&format!("test -L /etc/service/{q}"))?,
        Driver::Direct(_) => return Ok(None),
        Driver::Supervisor(_) => {
            return Err(fail(
                "service",
                "supervisor programs are enabled by their config (`autostart`), not by weft",
            ))
        }
    };
    Ok(Some(out.code == 0))
}

/// Whether systemd should read unit `name`'s files again before acting on it: they changed
/// since it loaded them, or it never loaded the unit (a unit file written since).
fn needs_daemon_reload(session: &HostSession, name: &str) -> Result<bool, HostError> {
    let out = session.probe(&format!(
        "systemctl show -p NeedDaemonReload -p LoadState -- {}",
        quote(name)
    ))?;
    Ok(out
        .stdout
        .lines()
        .any(|l| l == "NeedDaemonReload=yes" || l == "LoadState=not-found"))
}

/// Brings service `name` to `spec`.
pub fn service(session: &HostSession, name: &str, spec: &ServiceSpec) -> OpResult {
    let driver = Driver::of(session, name, &spec.driver)?;
    let mut reasons = Vec::new();
    if spec.daemon_reload
        && matches!(driver, Driver::Systemd)
        && needs_daemon_reload(session, name)?
    {
        session.act("systemctl daemon-reload")?;
        reasons.push("daemon reloaded");
    }
    if let Some(enabled) = spec.enabled {
        let now = is_enabled(session, &driver, name)?;
        if now.is_some_and(|now| now != enabled) {
            let command = match (&driver, enabled) {
                (Driver::Systemd, true) => format!("systemctl enable --quiet -- {}", quote(name)),
                (Driver::Systemd, false) => {
                    format!("systemctl disable --quiet -- {}", quote(name))
                }
                (_, true) => format!("ln -sfn /etc/sv/{n} /etc/service/{n}", n = quote(name)),
                (_, false) => format!("rm -f /etc/service/{}", quote(name)),
            };
            session.act(&command)?;
            reasons.push(if enabled { "enabled" } else { "disabled" });
        }
    }
    if let Some(running) = spec.running {
        if is_running(session, &driver, name, running)? != running {
            let action = if running { "start" } else { "stop" };
            session.act(&driver.action_command(name, action))?;
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
pub fn act_now(session: &HostSession, name: &str, action: &str, spec: &DriverSpec) -> OpResult {
    let driver = Driver::of(session, name, spec)?;
    session.act(&driver.action_command(name, action))?;
    Ok(session.report(&format!("service {name} ({action})"), true))
}
