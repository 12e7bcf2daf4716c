//! `service` under systemd, supervisor, runit and a daemon's own commands, and the actions
//! run now (`restarted`, `reloaded`, handlers).

use super::{changed, refused, unchanged};
use crate::exec::ops::daemons::{self, DaemonCommands};
use crate::exec::ops::services::{self, DriverSpec, ServiceManager, ServiceSpec};
use crate::exec::session::Handler;
use crate::exec::test_host::{assert_ran, assert_ran_in, TestHost};
use crate::shell::quote;
use crate::transport::fake::FakeTransport;

/// The probe of the basic facts (the `init` fact picks systemd).
const FACTS: &str = "set -- $(uname -snrm)";

fn systemd() -> FakeTransport {
    FakeTransport::new().on(FACTS, 0, "os=Linux\ninit=systemd\n")
}

fn no_init() -> FakeTransport {
    FakeTransport::new().on(FACTS, 0, "os=Linux\ninit=other\n")
}

fn wants(running: Option<bool>, enabled: Option<bool>) -> ServiceSpec {
    ServiceSpec {
        running,
        enabled,
        driver: DriverSpec::default(),
        daemon_reload: false,
    }
}

#[test]
fn systemd_table() {
    const ENABLED: &str = "systemctl is-enabled --quiet -- nginx";
    // Starting waits for the boot to settle first, then asks.
    const SETTLED_ACTIVE: &str = "timeout 60 systemctl is-system-running --wait >/dev/null 2>&1; systemctl is-active --quiet -- nginx";
    const ACTIVE: &str = "systemctl is-active --quiet -- nginx";
    struct Case {
        name: &'static str,
        /// Exit codes of `is-enabled` and `is-active`.
        enabled: i32,
        active: i32,
        spec: ServiceSpec,
        expected: &'static [&'static str],
        changed: bool,
        report: &'static str,
    }
    let cases = [
        Case {
            name: "stopped and disabled, wanted started and enabled",
            enabled: 1,
            active: 3,
            spec: wants(Some(true), Some(true)),
            expected: &[
                FACTS,
                ENABLED,
                "systemctl enable --quiet -- nginx",
                SETTLED_ACTIVE,
                "systemctl start -- nginx",
            ],
            changed: true,
            report: "service nginx (enabled, started)",
        },
        Case {
            name: "already running and enabled",
            enabled: 0,
            active: 0,
            spec: wants(Some(true), Some(true)),
            expected: &[FACTS, ENABLED, SETTLED_ACTIVE],
            changed: false,
            report: "service nginx",
        },
        Case {
            name: "running, wanted stopped and disabled",
            enabled: 0,
            active: 0,
            spec: wants(Some(false), Some(false)),
            expected: &[
                FACTS,
                ENABLED,
                "systemctl disable --quiet -- nginx",
                ACTIVE,
                "systemctl stop -- nginx",
            ],
            changed: true,
            report: "service nginx (disabled, stopped)",
        },
        Case {
            name: "nothing asked: nothing read but the facts",
            enabled: 0,
            active: 0,
            spec: wants(None, None),
            expected: &[FACTS],
            changed: false,
            report: "service nginx",
        },
    ];
    for case in cases {
        let fake = systemd()
            .on(ENABLED, case.enabled, "")
            .on(ACTIVE, case.active, "");
        let host = TestHost::new(fake);
        let result = services::service(&host.session, "nginx", &case.spec);
        assert_ran_in(case.name, &host, case.expected);
        assert_eq!(result.ok(), Some(case.changed), "{}", case.name);
        let reported = if case.changed {
            host.changes()
        } else {
            host.unchanged()
        };
        assert_eq!(reported, [case.report], "{}", case.name);
    }
}

#[test]
fn service_under_check_reads_but_never_starts() {
    let fake = systemd()
        .on("systemctl is-enabled", 1, "")
        .on("systemctl is-active", 3, "");
    let host = TestHost::check(fake);
    let result = services::service(&host.session, "nginx", &wants(Some(true), Some(true)));
    changed(&host, result, "service nginx (enabled, started)");
    assert!(host.all_changes_checked());
    assert!(
        host.commands()
            .iter()
            .all(|c| !c.contains("systemctl enable") && !c.contains("systemctl start")),
        "{:#?}",
        host.commands()
    );
}

#[test]
fn without_an_init_system_a_daemon_is_driven_by_the_commands_its_script_gives() {
    let nginx = DaemonCommands {
        start: "nginx".into(),
        stop: "nginx -s quit".into(),
        reload: "nginx -s reload".into(),
        status: "test -s /run/nginx.pid".into(),
    };
    let fake = no_init().on(&nginx.status, 1, "");
    let host = TestHost::new(fake);
    // `enabled` means nothing without an init system: it is left alone, not refused.
    let spec = ServiceSpec {
        driver: DriverSpec {
            commands: Some(nginx.clone()),
            ..DriverSpec::default()
        },
        ..wants(Some(true), Some(true))
    };
    let result = services::service(&host.session, "nginx", &spec);
    changed(&host, result, "service nginx (started)");
    assert_ran(&host, &[FACTS, &nginx.status, "nginx"]);
    assert_eq!(host.commands()[2], "nginx");

    // Without them, a daemon `lib/daemons` knows is refused with the constant to pass, even
    // where supervisor is installed (which would only answer "no such process"), and nothing
    // is run past the facts.
    let fake = no_init().on("command -v supervisorctl", 0, "supervisor\n");
    let host = TestHost::new(fake);
    let result = services::service(&host.session, "nginx", &wants(Some(true), None));
    refused(
        &host,
        result,
        "no init system on this host runs `nginx`, and no `commands` say how it starts and \
         stops: `import \"lib/daemons\" as daemons;` then pass `commands: daemons::NGINX`",
    );
    assert_ran(&host, &[FACTS]);
    assert_eq!(host.commands().len(), 1, "{:#?}", host.commands());
    let host = TestHost::new(no_init());
    let result = services::service(&host.session, "redis-server", &wants(Some(false), None));
    refused(&host, result, "commands: daemons::REDIS`");
}

#[test]
fn the_daemons_named_in_hints_are_those_of_lib_daemons() {
    let script = include_str!("../../../../stdlib/lib/daemons.rhai");
    let constants: Vec<&str> = script
        .lines()
        .filter_map(|line| line.strip_prefix("export const "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let known: Vec<&str> = daemons::KNOWN.iter().map(|(_, c)| *c).collect();
    assert_eq!(known, constants);
}

#[test]
fn a_restart_by_a_daemons_own_commands_stops_it_when_it_runs_then_starts_it() {
    let commands = DaemonCommands {
        start: "app start".into(),
        stop: "app stop".into(),
        reload: "app reload".into(),
        status: "app status".into(),
    };
    let driver = DriverSpec {
        manager: Some(ServiceManager::Direct),
        config: None,
        commands: Some(commands),
    };
    let host = TestHost::new(FakeTransport::new());
    let result = services::act_now(&host.session, "app", "restart", &driver);
    changed(&host, result, "service app (restart)");
    assert_eq!(
        host.commands(),
        ["if sh -c 'app status' >/dev/null 2>&1; then sh -c 'app stop'; fi && sh -c 'app start'"]
    );
}

#[test]
fn a_restart_keeps_a_comment_or_a_parenthesis_in_one_command_inside_that_command() {
    // Pasted into `( ... )`, the `#` would comment out the rest of the line (the start) and
    // the `)` would close the stop's subshell early.
    let commands = DaemonCommands {
        start: "app start # the port comes from its config".into(),
        stop: "pkill -f 'app)' || true".into(),
        reload: "app reload".into(),
        status: "test -e /run/app.pid # written by app".into(),
    };
    let driver = DriverSpec {
        manager: Some(ServiceManager::Direct),
        config: None,
        commands: Some(commands.clone()),
    };
    let host = TestHost::new(FakeTransport::new());
    let result = services::act_now(&host.session, "app", "restart", &driver);
    changed(&host, result, "service app (restart)");
    let [script] = host.commands().try_into().expect("one command");
    assert_eq!(
        script,
        format!(
            "if sh -c {} >/dev/null 2>&1; then sh -c {}; fi && sh -c {}",
            quote(&commands.status),
            quote(&commands.stop),
            quote(&commands.start)
        )
    );
    // Run by a real shell, each part runs whole: status succeeds, then stop, then start.
    let traced = script
        .replace("test -e /run/app.pid", "true")
        .replace("pkill -f", "echo stop")
        .replace("app start", "echo start");
    let out = std::process::Command::new("sh")
        .args(["-c", &traced])
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "stop app)\nstart\n");
}

#[test]
fn supervisor_and_runit_commands() {
    // (manager, config, action, command)
    let cases = [
        (
            ServiceManager::Supervisor,
            None,
            "start",
            "supervisorctl start app",
        ),
        (
            ServiceManager::Supervisor,
            Some("/etc/sup.conf"),
            "restart",
            "supervisorctl -c /etc/sup.conf restart app",
        ),
        // supervisor has no reload of one program: a HUP is one.
        (
            ServiceManager::Supervisor,
            None,
            "reload",
            "supervisorctl signal HUP app",
        ),
        (ServiceManager::Runit, None, "start", "sv up app"),
        (ServiceManager::Runit, None, "stop", "sv down app"),
        (ServiceManager::Runit, None, "reload", "sv hup app"),
        (
            ServiceManager::Systemd,
            None,
            "reload",
            "systemctl reload -- app",
        ),
    ];
    for (manager, config, action, command) in cases {
        let host = TestHost::new(FakeTransport::new());
        let driver = DriverSpec {
            manager: Some(manager),
            config: config.map(String::from),
            commands: None,
        };
        let result = services::act_now(&host.session, "app", action, &driver);
        assert!(
            matches!(result, Ok(true)),
            "{manager:?} {action}: {result:?}"
        );
        assert_eq!(host.commands(), [command], "{manager:?} {action}");
    }
}

#[test]
fn runit_enables_with_a_link_and_supervisor_refuses_enabled() {
    let fake = FakeTransport::new()
        .on("test -L /etc/service/app", 1, "")
        .on("sv status app | grep -q '^run:'", 0, "");
    let host = TestHost::new(fake);
    let spec = ServiceSpec {
        driver: DriverSpec {
            manager: Some(ServiceManager::Runit),
            ..DriverSpec::default()
        },
        ..wants(Some(true), Some(true))
    };
    let result = services::service(&host.session, "app", &spec);
    changed(&host, result, "service app (enabled)");
    assert_eq!(
        host.commands(),
        [
            "test -L /etc/service/app",
            "ln -sfn /etc/sv/app /etc/service/app",
            "sv status app | grep -q '^run:'",
        ]
    );

    let host = TestHost::new(FakeTransport::new());
    let spec = ServiceSpec {
        driver: DriverSpec {
            manager: Some(ServiceManager::Supervisor),
            ..DriverSpec::default()
        },
        ..wants(None, Some(true))
    };
    let result = services::service(&host.session, "app", &spec);
    refused(
        &host,
        result,
        "supervisor programs are enabled by their config",
    );
    assert!(host.commands().is_empty(), "{:?}", host.commands());
}

#[test]
fn a_service_no_manager_can_run_is_refused_with_the_reason() {
    let fake = no_init().on("command -v supervisorctl", 0, "");
    let host = TestHost::new(fake);
    let result = services::service(&host.session, "myapp", &wants(Some(true), None));
    refused(
        &host,
        result,
        "no init system, supervisor or runit on this host runs `myapp`, and no `commands` say \
         how it starts and stops: pass `commands: #{ start, stop, reload, status }` \
         (`lib/daemons` has them for `NGINX`, `HAPROXY`, `SUPERVISOR`, `KEEPALIVED`, \
         `POSTGRESQL`, `REDIS`: `import \"lib/daemons\" as daemons; ... commands: \
         daemons::NGINX`)",
    );

    // Supervisor installed: it is picked.
    let fake = no_init()
        .on("command -v supervisorctl", 0, "supervisor\n")
        .on("supervisorctl status myapp", 1, "");
    let host = TestHost::new(fake);
    let result = services::service(&host.session, "myapp", &wants(Some(true), None));
    changed(&host, result, "service myapp (started)");
    assert_eq!(
        host.commands().last().map(String::as_str),
        Some("supervisorctl start myapp")
    );
}

#[test]
fn service_running_reads_only() {
    let host = TestHost::check(systemd().on("systemctl is-active --quiet -- nginx", 0, ""));
    let running = services::running(&host.session, "nginx", &DriverSpec::default());
    assert!(matches!(running, Ok(true)), "{running:?}");
    // No settling wait for a question.
    assert_ran(&host, &[FACTS, "systemctl is-active --quiet -- nginx"]);
    assert_eq!(host.commands()[1], "systemctl is-active --quiet -- nginx");
    assert!(host.changes().is_empty() && host.unchanged().is_empty());
}

#[test]
fn notify_asks_once_per_service_and_action() {
    let host = TestHost::new(FakeTransport::new());
    let ask = |service: &str, action: &str, manager: Option<&str>| Handler {
        service: service.into(),
        action: action.into(),
        manager: manager.map(Into::into),
        config: None,
        commands: None,
        always: false,
    };
    host.session.notify(ask("nginx", "reload", None));
    host.session.notify(ask("nginx", "reload", None));
    host.session.notify(ask("nginx", "restart", None));
    host.session
        .notify(ask("app", "restart", Some("supervisor")));
    let handlers = host.session.take_handlers();
    let asked: Vec<(&str, &str)> = handlers
        .iter()
        .map(|h| (h.service.as_str(), h.action.as_str()))
        .collect();
    assert_eq!(
        asked,
        [
            ("nginx", "reload"),
            ("nginx", "restart"),
            ("app", "restart")
        ]
    );
    assert!(host.session.take_handlers().is_empty());
    // Asking is not doing: nothing reached the host.
    assert!(host.commands().is_empty());
}

#[test]
fn notify_asked_twice_with_and_without_always_or_commands_runs_once_always() {
    let host = TestHost::new(FakeTransport::new());
    let commands = DaemonCommands {
        start: "nginx".into(),
        stop: "nginx -s quit".into(),
        reload: "nginx -s reload".into(),
        status: "test -s /run/nginx.pid".into(),
    };
    let ask = |always: bool, commands: Option<DaemonCommands>| Handler {
        service: "nginx".into(),
        action: "reload".into(),
        manager: None,
        config: None,
        commands,
        always,
    };
    host.session.notify(ask(false, None));
    host.session.notify(ask(true, Some(commands.clone())));
    host.session.notify(ask(false, None));
    let handlers = host.session.take_handlers();
    assert_eq!(handlers, [ask(true, Some(commands))]);
}

#[test]
fn unchanged_service_says_so() {
    let fake = systemd().on("systemctl is-active", 0, "");
    let host = TestHost::new(fake);
    let result = services::service(&host.session, "nginx", &wants(Some(true), None));
    unchanged(&host, result, "service nginx");
}

#[test]
fn daemon_reload_runs_only_when_systemd_says_the_units_files_changed() {
    const SHOW: &str = "systemctl show -p NeedDaemonReload -p LoadState -- app";
    let cases = [
        (
            "changed unit",
            "NeedDaemonReload=yes\nLoadState=loaded\n",
            true,
        ),
        (
            "new unit",
            "LoadState=not-found\nNeedDaemonReload=no\n",
            true,
        ),
        (
            "as systemd read it",
            "NeedDaemonReload=no\nLoadState=loaded\n",
            false,
        ),
    ];
    for (name, shown, reloads) in cases {
        let fake = systemd()
            .on(SHOW, 0, shown)
            .on("systemctl is-enabled", 0, "");
        let host = TestHost::new(fake);
        let spec = ServiceSpec {
            daemon_reload: true,
            ..wants(None, Some(true))
        };
        let result = services::service(&host.session, "app", &spec);
        let mut expected = vec![FACTS, SHOW];
        if reloads {
            expected.push("systemctl daemon-reload");
            changed(&host, result, "service app (daemon reloaded)");
        } else {
            unchanged(&host, result, "service app");
        }
        expected.push("systemctl is-enabled --quiet -- app");
        assert_ran_in(name, &host, &expected);
    }
    // Not asked, or not systemd: nothing is asked of systemd.
    let host = TestHost::new(no_init().on("supervisorctl", 0, ""));
    let spec = ServiceSpec {
        daemon_reload: true,
        driver: DriverSpec {
            manager: Some(ServiceManager::Supervisor),
            ..DriverSpec::default()
        },
        ..wants(Some(true), None)
    };
    let _ = services::service(&host.session, "app", &spec);
    assert!(
        host.commands()
            .iter()
            .all(|c| !c.contains("daemon-reload") && !c.contains("systemctl show")),
        "{:?}",
        host.commands()
    );
    // Under --check it is said, not done.
    let host = TestHost::check(systemd().on(SHOW, 0, "NeedDaemonReload=yes\n"));
    let spec = ServiceSpec {
        daemon_reload: true,
        ..wants(None, None)
    };
    let result = services::service(&host.session, "app", &spec);
    changed(&host, result, "service app (daemon reloaded)");
    assert_ran(&host, &[FACTS, SHOW]);
}
