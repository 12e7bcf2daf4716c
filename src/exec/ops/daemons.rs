//! Daemons driven by their own commands, for hosts without an init system (containers whose
//! first process is not systemd): how each daemon the stdlib runs is started, stopped,
//! reloaded and asked whether it runs.

/// The shell commands that drive one daemon without an init system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonCommands {
    /// Starts it in the background.
    pub start: String,
    /// Stops it, returning once it is gone.
    pub stop: String,
    /// Makes it read its config again.
    pub reload: String,
    /// Exits 0 when it runs.
    pub status: String,
}

fn commands(start: &str, stop: &str, reload: &str, status: &str) -> DaemonCommands {
    DaemonCommands {
        start: start.into(),
        stop: stop.into(),
        reload: reload.into(),
        status: status.into(),
    }
}

/// The commands of a daemon weft knows by its service name, as systemd names it.
pub fn known(name: &str) -> Option<DaemonCommands> {
    let haproxy = "haproxy -D -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid";
    Some(match name {
        "nginx" => commands(
            "nginx",
            "nginx -s quit; for i in $(seq 1 50); do test -e /run/nginx.pid || exit 0; sleep 0.1; done",
            "nginx -s reload",
            "test -s /run/nginx.pid && kill -0 \"$(cat /run/nginx.pid)\"",
        ),
        // A reload starts a new process that takes over the listening sockets while the old
        // one finishes its connections.
        "haproxy" => commands(
            haproxy,
            "kill \"$(cat /run/haproxy.pid)\" && rm -f /run/haproxy.pid",
            &format!("{haproxy} -x /run/haproxy.sock -sf $(cat /run/haproxy.pid)"),
            "test -s /run/haproxy.pid && kill -0 $(head -n 1 /run/haproxy.pid)",
        ),
        "supervisor" => commands(
            "supervisord -c /etc/supervisor/supervisord.conf",
            "supervisorctl shutdown",
            "supervisorctl reread && supervisorctl update",
            "supervisorctl pid 2>/dev/null | grep -q '^[0-9][0-9]*$'",
        ),
        "keepalived" => commands(
            "keepalived -f /etc/keepalived/keepalived.conf -p /run/keepalived.pid",
            "kill \"$(cat /run/keepalived.pid)\"",
            "kill -HUP \"$(cat /run/keepalived.pid)\"",
            "test -s /run/keepalived.pid && kill -0 \"$(cat /run/keepalived.pid)\"",
        ),
        // Debian's init scripts work without an init system.
        "postgresql" => commands(
            "service postgresql start",
            "service postgresql stop",
            "service postgresql reload",
            "service postgresql status >/dev/null",
        ),
        "redis-server" => commands(
            "service redis-server start",
            "service redis-server stop",
            "service redis-server restart",
            "service redis-server status >/dev/null",
        ),
        _ => return None,
    })
}
