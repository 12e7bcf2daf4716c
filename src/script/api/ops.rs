//! Idempotent operations and facts, as methods of `Host`. Each operation returns `true` when
//! it changed (or under `--check` would change) the host.

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::error::{host_error, host_error_at};
use super::host::Host;
use super::options::{
    self, strings, DaemonCommandsOption, Mode, PackagesState, Presence, ServiceState,
};
use super::reveal::{self, reveal_str};
use super::{to_dynamic, vars_from_map, ApiResult};
use crate::exec::ops::daemons::DaemonCommands;
use crate::exec::ops::files::FileSpec;
use crate::exec::ops::packages::PackageState;
use crate::exec::ops::services::{DriverSpec, ServiceManager, ServiceSpec};
use crate::exec::ops::system::UserSpec;
use crate::exec::ops::{facts, files, packages, services, system};
use crate::exec::session::{Handler, HostError};

/// Runs an operation on `host`, timed under `--timings` as the kind its report names; with
/// `always`, its steps run even after an interrupt.
fn done(
    ctx: &NativeCallContext,
    host: &crate::exec::session::HostSession,
    always: bool,
    op: impl FnOnce() -> Result<bool, HostError>,
) -> ApiResult<bool> {
    host.always(always, || host.timed("", op))
        .map_err(|e| host_error_at(ctx, host, e))
}

/// The options that say how a service is driven: `manager`, `config`, `commands`.
fn driver_spec(
    manager: Option<String>,
    config: Option<String>,
    commands: Option<DaemonCommandsOption>,
) -> ApiResult<DriverSpec> {
    Ok(DriverSpec {
        manager: manager.map(|m| ServiceManager::parse(&m)).transpose()?,
        config,
        commands: commands.map(daemon_commands),
    })
}

/// A script's `commands` as the operations take them.
fn daemon_commands(c: DaemonCommandsOption) -> DaemonCommands {
    DaemonCommands {
        start: c.start,
        stop: c.stop,
        reload: c.reload,
        status: c.status,
    }
}

/// A file's options as the operations take them; a `sensitive` content joins the run's
/// secrets before anything could print it.
#[allow(clippy::too_many_arguments)]
fn file_spec(
    host: &Host,
    content: Option<String>,
    mode: Option<Mode>,
    owner: Option<String>,
    group: Option<String>,
    sensitive: bool,
    validate: Option<Vec<String>>,
) -> FileSpec {
    if sensitive {
        if let Some(content) = &content {
            host.0.add_secret(content);
        }
    }
    FileSpec {
        content: content.map(String::into_bytes),
        mode: mode.map(|m| m.0),
        owner,
        group,
        sensitive,
        validate,
    }
}

/// Operations and facts of `Host`.
#[export_module]
pub mod ops_api {
    use super::*;

    /// The host's basic facts, read once per goal (`host.refresh_facts()` reads them again):
    /// `os`, `kernel`, `arch`, `hostname`,
    /// `distro`, `distro_version`, `distro_name`, `init` (`systemd` or `other`),
    /// `package_manager` (`apt`, `dnf`, `yum`, `apk`), `cpus`, `memory_mb`, `user`, `uid`,
    /// `address` (the default source address).
    ///
    /// ```rhai
    /// if host.facts.package_manager == "apt" { log("a Debian family host"); }
    /// ```
    #[rhai_fn(get = "facts", pure, return_raw)]
    pub fn get_facts(host: &mut Host) -> Result<Map, Box<EvalAltResult>> {
        let facts = facts::basic(&host.0).map_err(|e| host_error(&host.0, e))?;
        Ok(to_dynamic(&serde_json::Value::Object(facts))
            .try_cast::<Map>()
            .unwrap_or_default())
    }

    /// Reads the basic facts from the host again (after a change that alters them, such as
    /// installing a package manager) and returns them.
    ///
    /// ```rhai
    /// let facts = host.refresh_facts();
    /// ```
    #[rhai_fn(name = "refresh_facts", return_raw)]
    pub fn refresh_facts(host: &mut Host) -> Result<Map, Box<EvalAltResult>> {
        host.0.forget_facts();
        get_facts(host)
    }

    /// A heavier fact by name: `users` (name, uid, gid, home, shell), `groups` (name, gid,
    /// members), `packages` (a map of name to version) or `ports` (listening proto, address,
    /// port).
    ///
    /// ```rhai
    /// let installed = host.fact("packages");
    /// ```
    #[rhai_fn(name = "fact", return_raw)]
    pub fn fact(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let value = facts::named(&host.0, name).map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(to_dynamic(&value))
    }

    /// Makes `path` a regular file: with `content`, exactly that text; else an existing
    /// file's content is kept and a missing one is created empty.
    ///
    /// ```rhai
    /// host.file("/var/log/app.log");
    /// host.file("/etc/app.env", #{ content: "TOKEN=" + token + "\n", mode: "0600", sensitive: true });
    /// host.file("/etc/sudoers.d/app", #{ content: rule, mode: "0440", validate: ["visudo", "-cf", "%s"] });
    /// ```
    #[rhai_fn(name = "file", return_raw)]
    pub fn file(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::FileOptions = options::read(options)?;
        let spec = file_spec(
            host,
            o.content,
            o.mode,
            o.owner,
            o.group,
            o.sensitive,
            o.validate,
        );
        done(&ctx, &host.0, o.always, || {
            files::file(&host.0, path, &spec)
        })
    }

    /// Makes `path` a directory, with its parents.
    ///
    /// ```rhai
    /// host.directory("/srv/app/releases");
    /// host.directory("/srv/app", #{ mode: "0755", owner: "app", group: "app" });
    /// ```
    #[rhai_fn(name = "directory", return_raw)]
    pub fn directory(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::DirectoryOptions = options::read(options)?;
        let mode = o.mode.map(|m| m.0);
        done(&ctx, &host.0, o.always, || {
            files::directory(&host.0, path, mode, o.owner.as_deref(), o.group.as_deref())
        })
    }

    /// Makes `path` a symbolic link to `target`, switched atomically when it pointed elsewhere
    /// (with `always`, even after Ctrl-C, e.g. back to the previous release).
    ///
    /// ```rhai
    /// host.link("/srv/app/current", "/srv/app/releases/42");
    /// host.link("/srv/app/current", "/srv/app/releases/41", #{ always: true });
    /// ```
    #[rhai_fn(name = "link", return_raw)]
    pub fn link(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        target: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path, target);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::LinkOptions = options::read(options)?;
        done(&ctx, &host.0, o.always, || {
            files::link(&host.0, path, target)
        })
    }

    /// Makes sure nothing (file, link or folder) exists at `path`.
    ///
    /// ```rhai
    /// host.absent("/etc/nginx/sites-enabled/default");
    /// host.absent("/srv/app/.lock", #{ always: true });
    /// ```
    #[rhai_fn(name = "absent", return_raw)]
    pub fn absent(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::AbsentOptions = options::read(options)?;
        done(&ctx, &host.0, o.always, || files::absent(&host.0, path))
    }

    /// Makes `line` a line of the file at `path`, appending it when missing (or replacing the
    /// first line that matches `regex`).
    ///
    /// ```rhai
    /// host.line("/etc/hosts", "10.0.0.5 db");
    /// host.line("/etc/ssh/sshd_config", "PermitRootLogin no", #{ regex: "^#?PermitRootLogin" });
    /// ```
    #[rhai_fn(name = "line", return_raw)]
    pub fn line(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        line: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path, line);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::LineOptions = options::read(options)?;
        if o.sensitive {
            host.0.add_secret(line);
        }
        done(&ctx, &host.0, o.always, || {
            files::line(&host.0, path, line, o.regex.as_deref(), o.sensitive)
        })
    }

    /// Renders a template with `vars` into `dest`, with the file options of `file` but
    /// `content` (`validate` is the daemon's config check, which must accept the new file
    /// before it replaces the live one).
    ///
    /// ```rhai
    /// host.template("app/env.hbs", "/etc/app.env", #{ token: token }, #{ mode: "0600", sensitive: true });
    /// host.template("nginx/site.conf.hbs", "/etc/nginx/sites-enabled/app.conf", vars, #{ validate: ["nginx", "-t", "-q"] });
    /// ```
    #[rhai_fn(name = "template", return_raw)]
    pub fn template_full(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        dest: &str,
        vars: Map,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name, dest);
        let vars = reveal::map(&ctx, &host.0, vars)?;
        let options = reveal::map(&ctx, &host.0, options)?;
        let vars = vars_from_map(vars)?;
        let o: options::TemplateOptions = options::read(options)?;
        let spec = file_spec(
            host,
            None,
            o.mode,
            o.owner,
            o.group,
            o.sensitive,
            o.validate,
        );
        host.0
            .always(o.always, || {
                host.0.timed("template", || {
                    files::template(&host.0, name, dest, vars, spec)
                })
            })
            .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Makes the folder `remote` hold the local folder `local` (relative to the project);
    /// with `delete`, it also loses the files `local` does not have.
    ///
    /// ```rhai
    /// host.sync_dir("site", "/srv/www");
    /// host.sync_dir("static", "/srv/app/static", #{ delete: true });
    /// ```
    #[rhai_fn(name = "sync_dir", return_raw)]
    pub fn sync_dir(
        ctx: NativeCallContext,
        host: &mut Host,
        local: &str,
        remote: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; local, remote);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::SyncDirOptions = options::read(options)?;
        done(&ctx, &host.0, o.always, || {
            files::sync(&host.0, local, remote, o.delete)
        })
    }

    /// Makes packages installed (or as `state` says), with the host's manager (apt, dnf, yum
    /// or apk). The index is refreshed only when something must be installed.
    ///
    /// ```rhai
    /// host.packages(["nginx", "git"]);
    /// host.packages(["telnet"], #{ state: "absent" });
    /// ```
    #[rhai_fn(name = "packages", return_raw)]
    pub fn packages(
        ctx: NativeCallContext,
        host: &mut Host,
        names: Array,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let options = reveal::map(&ctx, &host.0, options)?;
        let names = reveal::array(&ctx, &host.0, names)?;
        let o: options::PackagesOptions = options::read(options)?;
        let wanted = match o.state {
            PackagesState::Present => PackageState::Present,
            PackagesState::Absent => PackageState::Absent,
            PackagesState::Latest => PackageState::Latest,
        };
        let names = strings(names, "package names")?;
        done(&ctx, &host.0, o.always, || {
            packages::packages(&host.0, &names, wanted)
        })
    }

    /// Makes user `name` exist (or not, with `state: "absent"`).
    ///
    /// ```rhai
    /// host.user("deploy");
    /// host.user("app", #{ shell: "/bin/sh", groups: ["www-data"], system: true });
    /// ```
    #[rhai_fn(name = "user", return_raw)]
    pub fn user(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::UserOptions = options::read(options)?;
        let spec = UserSpec {
            shell: o.shell,
            home: o.home,
            group: o.group,
            groups: o.groups,
            system: o.system,
            absent: o.state == Presence::Absent,
        };
        done(&ctx, &host.0, o.always, || {
            system::user(&host.0, name, &spec)
        })
    }

    /// Makes group `name` exist (or not, with `state: "absent"`).
    ///
    /// ```rhai
    /// host.group("web");
    /// host.group("deploy", #{ system: true });
    /// ```
    #[rhai_fn(name = "group", return_raw)]
    pub fn group(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::GroupOptions = options::read(options)?;
        let absent = o.state == Presence::Absent;
        done(&ctx, &host.0, o.always, || {
            system::group(&host.0, name, o.system, absent)
        })
    }

    /// Makes public `keys` present in `user`'s `~/.ssh/authorized_keys` (or absent, or, with
    /// `exclusive`, the whole set).
    ///
    /// ```rhai
    /// host.authorized_keys("deploy", [key]);
    /// host.authorized_keys("deploy", [alice_key, bob_key], #{ exclusive: true });
    /// ```
    #[rhai_fn(name = "authorized_keys", return_raw)]
    pub fn authorized_keys(
        ctx: NativeCallContext,
        host: &mut Host,
        user: &str,
        keys: Array,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; user);
        let options = reveal::map(&ctx, &host.0, options)?;
        let keys = reveal::array(&ctx, &host.0, keys)?;
        let o: options::AuthorizedKeysOptions = options::read(options)?;
        let absent = o.state == Presence::Absent;
        let keys = strings(keys, "keys")?;
        done(&ctx, &host.0, o.always, || {
            system::authorized_keys(&host.0, user, &keys, absent, o.exclusive)
        })
    }

    /// Brings a service to a state and returns whether it changed anything. The manager is
    /// systemd when the `init` fact says so; without an init system, the daemon's own
    /// `commands` (each service script of the stdlib passes its daemon's), else supervisor
    /// or runit. A bare `host.service("nginx", ..)` works only under systemd: without an init
    /// system it needs `commands` (those of `lib/daemons`' nginx, haproxy, supervisor,
    /// keepalived, postgresql and redis-server are never looked for in supervisor or runit).
    /// Without an init system nothing starts at boot, so `enabled` is left alone there.
    ///
    /// ```rhai
    /// host.service("nginx", #{ state: "started", enabled: true });
    /// host.service("app", #{ state: "started", daemon_reload: true });
    /// // Also on hosts without an init system:
    /// import "lib/daemons" as daemons;
    /// host.service("nginx", #{ state: "started", commands: daemons::NGINX });
    /// ```
    #[rhai_fn(name = "service", return_raw)]
    pub fn service(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::ServiceOptions = options::read(options)?;
        let spec = ServiceSpec {
            running: match o.state {
                Some(ServiceState::Started) => Some(true),
                Some(ServiceState::Stopped) => Some(false),
                _ => None,
            },
            enabled: o.enabled,
            driver: driver_spec(o.manager, o.config, o.commands)?,
            daemon_reload: o.daemon_reload,
        };
        let mut changed = done(&ctx, &host.0, o.always, || {
            services::service(&host.0, name, &spec)
        })?;
        let action = match o.state {
            Some(ServiceState::Restarted) => Some("restart"),
            Some(ServiceState::Reloaded) => Some("reload"),
            _ => None,
        };
        if let Some(action) = action {
            changed |= done(&ctx, &host.0, o.always, || {
                services::act_now(&host.0, name, action, &spec.driver)
            })?;
        }
        Ok(changed)
    }

    /// Whether service `name` runs (reads only, so also under `--check`), by the manager
    /// `service` would use.
    ///
    /// ```rhai
    /// log(if host.service_running("nginx") { "nginx: running" } else { "nginx: stopped" });
    /// let up = host.service_running("app", #{ manager: "supervisor" });
    /// ```
    #[rhai_fn(name = "service_running", return_raw)]
    pub fn service_running(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::ServiceRunningOptions = options::read(options)?;
        let spec = driver_spec(o.manager, o.config, o.commands)?;
        services::running(&host.0, name, &spec).map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Asks for `action` (`reload` or `restart`) of a service once, when the goal ends
    /// successfully: call it when something the service reads has changed. The options say
    /// how the service is driven, as for `service`. Asked twice, it runs once, with `always`
    /// if either asked; once one action fails, only the `always` ones left still run.
    ///
    /// ```rhai
    /// if host.template("nginx/site.conf.hbs", "/etc/nginx/sites-enabled/app", #{}) {
    ///     host.notify("nginx", "reload");
    /// }
    /// host.notify("app", "restart", #{ manager: "supervisor" });
    /// ```
    #[rhai_fn(name = "notify", return_raw)]
    pub fn notify(
        ctx: NativeCallContext,
        host: &mut Host,
        service: &str,
        action: &str,
        options: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; service);
        let options = reveal::map(&ctx, &host.0, options)?;
        if !matches!(action, "reload" | "restart") {
            return Err(format!("notify: action `{action}` is not `reload` or `restart`").into());
        }
        let o: options::NotifyOptions = options::read(options)?;
        if let Some(m) = &o.manager {
            ServiceManager::parse(m)?;
        }
        host.0.notify(Handler {
            service: service.to_string(),
            action: action.to_string(),
            manager: o.manager,
            config: o.config,
            commands: o.commands.map(daemon_commands),
            always: o.always,
        });
        Ok(())
    }

    /// Makes a cron entry `name` (in `/etc/cron.d/weft-NAME`); `schedule` and `command` are
    /// required unless `state` is `absent`.
    ///
    /// ```rhai
    /// host.cron("backup", #{ schedule: "15 3 * * *", command: "/usr/local/bin/backup" });
    /// host.cron("backup", #{ state: "absent" });
    /// ```
    #[rhai_fn(name = "cron", return_raw)]
    pub fn cron(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::CronOptions = options::read(options)?;
        let absent = o.state == Presence::Absent;
        let schedule = o.schedule.unwrap_or_default();
        let command = o.command.unwrap_or_default();
        let user = o.user.unwrap_or_else(|| "root".into());
        done(&ctx, &host.0, o.always, || {
            system::cron(&host.0, name, &schedule, &command, &user, absent)
        })
    }

    /// Makes `dest` a git checkout of `repo` at `version` (default `main`).
    ///
    /// ```rhai
    /// host.git("https://example.com/app.git", "/srv/app");
    /// host.git("https://example.com/app.git", "/srv/app/repo", #{ version: "v1.2.0" });
    /// ```
    #[rhai_fn(name = "git", return_raw)]
    pub fn git(
        ctx: NativeCallContext,
        host: &mut Host,
        repo: &str,
        dest: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; repo, dest);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::GitOptions = options::read(options)?;
        let version = o.version.unwrap_or_else(|| "main".into());
        done(&ctx, &host.0, o.always, || {
            system::git(&host.0, repo, dest, &version, o.key.as_deref())
        })
    }

    /// Makes `path` a Python virtualenv (made by `python`, default `python3`).
    ///
    /// ```rhai
    /// host.virtualenv("/srv/app/venv");
    /// host.virtualenv("/srv/app/venv", #{ python: "/usr/bin/python3" });
    /// ```
    #[rhai_fn(name = "virtualenv", return_raw)]
    pub fn virtualenv(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::VirtualenvOptions = options::read(options)?;
        done(&ctx, &host.0, o.always, || {
            system::virtualenv(&host.0, path, o.python.as_deref())
        })
    }

    /// Installs `packages` or `requirements` into the virtualenv `venv`.
    ///
    /// ```rhai
    /// host.pip("/srv/app/venv", #{ packages: ["gunicorn==22.0.0"] });
    /// ```
    #[rhai_fn(name = "pip", return_raw)]
    pub fn pip(
        ctx: NativeCallContext,
        host: &mut Host,
        venv: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; venv);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::PipOptions = options::read(options)?;
        done(&ctx, &host.0, o.always, || {
            system::pip(&host.0, venv, &o.packages, o.requirements.as_deref())
        })
    }

    /// Extracts the tar.gz `archive` (a file on the host) into `dest`, unless `dest` already
    /// holds `marker` (a path inside the archive).
    ///
    /// ```rhai
    /// host.extract("/tmp/app.tar.gz", "/srv/app/releases/42", "app.py");
    /// host.extract("/tmp/app.tar.gz", "/srv/app/releases/42", "app.py", #{ always: true });
    /// ```
    #[rhai_fn(name = "extract", return_raw)]
    pub fn extract(
        ctx: NativeCallContext,
        host: &mut Host,
        archive: &str,
        dest: &str,
        marker: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; archive, dest, marker);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::ExtractOptions = options::read(options)?;
        done(&ctx, &host.0, o.always, || {
            system::extract(&host.0, archive, dest, marker)
        })
    }

    /// Packs the folder `source` (on the host) into the tar.gz `archive`, unless it exists.
    ///
    /// ```rhai
    /// host.archive("/srv/app/build", "/srv/app/build.tar.gz");
    /// host.archive("/srv/app/build", "/srv/app/build.tar.gz", #{ always: true });
    /// ```
    #[rhai_fn(name = "archive", return_raw)]
    pub fn archive(
        ctx: NativeCallContext,
        host: &mut Host,
        source: &str,
        archive: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; source, archive);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::ArchiveOptions = options::read(options)?;
        done(&ctx, &host.0, o.always, || {
            system::archive(&host.0, source, archive)
        })
    }
}

/// The functions above whose options may be left out, each registered a second time without
/// its option map: `host.file(path)` is `host.file(path, #{})`.
pub fn register_short_forms(module: &mut rhai::Module) {
    short_form!(module, "file", ops_api::file(path: &str));
    short_form!(module, "directory", ops_api::directory(path: &str));
    short_form!(module, "link", ops_api::link(path: &str, target: &str));
    short_form!(module, "absent", ops_api::absent(path: &str));
    short_form!(module, "line", ops_api::line(path: &str, line: &str));
    short_form!(module, "sync_dir", ops_api::sync_dir(local: &str, remote: &str));
    short_form!(module, "packages", ops_api::packages(names: Array));
    short_form!(module, "user", ops_api::user(name: &str));
    short_form!(module, "group", ops_api::group(name: &str));
    short_form!(module, "authorized_keys", ops_api::authorized_keys(user: &str, keys: Array));
    short_form!(module, "service_running", ops_api::service_running(name: &str));
    short_form!(module, "notify", ops_api::notify(service: &str, action: &str) -> ());
    short_form!(module, "git", ops_api::git(repo: &str, dest: &str));
    short_form!(module, "virtualenv", ops_api::virtualenv(path: &str));
    short_form!(module, "extract", ops_api::extract(archive: &str, dest: &str, marker: &str));
    short_form!(module, "archive", ops_api::archive(source: &str, archive: &str));
}
