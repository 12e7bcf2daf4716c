//! Idempotent operations and facts, as methods of `Host`. Each operation returns `true` when
//! it changed (or under `--check` would change) the host.

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::error::{host_error, host_error_at};
use super::host::Host;
use super::options::{self, strings, Options};
use super::reveal::{self, reveal_str};
use super::{to_dynamic, vars_from_map, ApiResult};
use crate::exec::ops::daemons::DaemonCommands;
use crate::exec::ops::files::FileSpec;
use crate::exec::ops::packages::PackageState;
use crate::exec::ops::services::{DriverSpec, ServiceManager, ServiceSpec};
use crate::exec::ops::system::UserSpec;
use crate::exec::ops::{facts, files, packages, services, system};
use crate::exec::session::HostError;

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

/// Reads `state` as one of `choices`; `None` when absent.
fn state(opts: &mut Options, choices: &[&str]) -> ApiResult<Option<String>> {
    match opts.string("state")? {
        Some(s) if choices.contains(&s.as_str()) => Ok(Some(s)),
        Some(s) => Err(format!("state `{s}` is not one of {}", choices.join(", ")).into()),
        None => Ok(None),
    }
}

/// The options that say how a service is driven: `manager`, `config`, `commands`.
fn driver_spec(opts: &mut Options) -> ApiResult<DriverSpec> {
    let manager = opts
        .string("manager")?
        .map(|m| ServiceManager::parse(&m))
        .transpose()?;
    let commands = match opts.strings_map("commands")? {
        None => None,
        Some(mut map) => {
            let mut take = |key: &str| {
                map.remove(key).ok_or_else(|| -> Box<EvalAltResult> {
                    format!("option `commands` needs `start`, `stop`, `reload` and `status`; `{key}` is missing").into()
                })
            };
            let commands = DaemonCommands {
                start: take("start")?,
                stop: take("stop")?,
                reload: take("reload")?,
                status: take("status")?,
            };
            if let Some(extra) = map.keys().next() {
                return Err(format!(
                    "option `commands` takes `start`, `stop`, `reload` and `status`, not `{extra}`"
                )
                .into());
            }
            Some(commands)
        }
    };
    Ok(DriverSpec {
        manager,
        config: opts.string("config")?,
        commands,
    })
}

fn file_spec(opts: &mut Options, host: &Host) -> ApiResult<FileSpec> {
    let sensitive = opts.bool("sensitive")?.unwrap_or(false);
    let content = opts.string("content")?;
    if sensitive {
        if let Some(content) = &content {
            host.0.add_secret(content);
        }
    }
    Ok(FileSpec {
        content: content.map(String::into_bytes),
        mode: opts.mode("mode")?,
        owner: opts.string("owner")?,
        group: opts.string("group")?,
        sensitive,
        validate: opts.strings("validate")?,
    })
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

    /// Makes `path` a regular file. Options: `content` (exact text; else an existing file's
    /// content is kept and a missing one is created empty), `mode` (`"0644"`), `owner`,
    /// `group`, `sensitive` (never show the content, in diffs or logs), `validate` (a
    /// command, as an array, that must accept the new content before it replaces the file:
    /// `%s` in it is the path of a staged copy; without `%s` the command runs where the
    /// file's folder looks as it will, in a mount namespace of its own).
    ///
    /// ```rhai
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
        let mut opts = Options::new(options, options::keys("file"))?;
        let always = opts.always()?;
        let spec = file_spec(&mut opts, host)?;
        done(&ctx, &host.0, always, || files::file(&host.0, path, &spec))
    }

    /// Makes `path` a directory, with its parents.
    ///
    /// ```rhai
    /// host.directory("/srv/app/releases");
    /// ```
    #[rhai_fn(name = "directory", return_raw)]
    pub fn directory(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        let always = false;
        done(&ctx, &host.0, always, || {
            files::directory(&host.0, path, None, None, None)
        })
    }

    /// Makes `path` a directory with options `mode`, `owner` and `group`.
    ///
    /// ```rhai
    /// host.directory("/srv/app", #{ mode: "0755", owner: "app", group: "app" });
    /// ```
    #[rhai_fn(name = "directory", return_raw)]
    pub fn directory_with(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        let options = reveal::map(&ctx, &host.0, options)?;
        let mut opts = Options::new(options, options::keys("directory"))?;
        let always = opts.always()?;
        let (mode, owner, group) = (
            opts.mode("mode")?,
            opts.string("owner")?,
            opts.string("group")?,
        );
        done(&ctx, &host.0, always, || {
            files::directory(&host.0, path, mode, owner.as_deref(), group.as_deref())
        })
    }

    /// Makes `path` a symbolic link to `target`, switched atomically when it pointed elsewhere.
    ///
    /// ```rhai
    /// host.link("/srv/app/current", "/srv/app/releases/42");
    /// ```
    #[rhai_fn(name = "link", return_raw)]
    pub fn link(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        target: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path, target);
        link_with(ctx, host, path, target, Map::new())
    }

    /// Makes `path` a symbolic link to `target` with option `always` (switch it even after
    /// Ctrl-C, e.g. back to the previous release).
    ///
    /// ```rhai
    /// host.link("/srv/app/current", "/srv/app/releases/41", #{ always: true });
    /// ```
    #[rhai_fn(name = "link", return_raw)]
    pub fn link_with(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        target: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path, target);
        let options = reveal::map(&ctx, &host.0, options)?;
        let always = Options::new(options, options::keys("link"))?.always()?;
        done(&ctx, &host.0, always, || files::link(&host.0, path, target))
    }

    /// Makes sure nothing (file, link or folder) exists at `path`.
    ///
    /// ```rhai
    /// host.absent("/etc/nginx/sites-enabled/default");
    /// ```
    #[rhai_fn(name = "absent", return_raw)]
    pub fn absent(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        absent_with(ctx, host, path, Map::new())
    }

    /// Makes sure nothing exists at `path`, with option `always` (even after Ctrl-C).
    ///
    /// ```rhai
    /// host.absent("/srv/app/.lock", #{ always: true });
    /// ```
    #[rhai_fn(name = "absent", return_raw)]
    pub fn absent_with(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        let options = reveal::map(&ctx, &host.0, options)?;
        let always = Options::new(options, options::keys("absent"))?.always()?;
        done(&ctx, &host.0, always, || files::absent(&host.0, path))
    }

    /// Makes `line` a line of the file at `path`, appending it when missing.
    ///
    /// ```rhai
    /// host.line("/etc/hosts", "10.0.0.5 db");
    /// ```
    #[rhai_fn(name = "line", return_raw)]
    pub fn line(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        line: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path, line);
        let always = false;
        done(&ctx, &host.0, always, || {
            files::line(&host.0, path, line, None, false)
        })
    }

    /// Makes `line` a line of the file with options: `regex` (the first line matching it is
    /// replaced), `sensitive`.
    ///
    /// ```rhai
    /// host.line("/etc/ssh/sshd_config", "PermitRootLogin no", #{ regex: "^#?PermitRootLogin" });
    /// ```
    #[rhai_fn(name = "line", return_raw)]
    pub fn line_with(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        line: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path, line);
        let options = reveal::map(&ctx, &host.0, options)?;
        let mut opts = Options::new(options, options::keys("line"))?;
        let always = opts.always()?;
        let pattern = opts.string("regex")?;
        let sensitive = opts.bool("sensitive")?.unwrap_or(false);
        if sensitive {
            host.0.add_secret(line);
        }
        done(&ctx, &host.0, always, || {
            files::line(&host.0, path, line, pattern.as_deref(), sensitive)
        })
    }

    /// Renders a template with `vars` into `dest` with file options: `mode`, `owner`, `group`,
    /// `sensitive`, `validate` (as for `file`: the daemon's config check, which must accept
    /// the new file before it replaces the live one).
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
        let mut opts = Options::new(options, options::keys("template"))?;
        let always = opts.always()?;
        let spec = file_spec(&mut opts, host)?;
        host.0
            .always(always, || {
                host.0.timed("template", || {
                    files::template(&host.0, name, dest, vars, spec)
                })
            })
            .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Makes the folder `remote` hold the local folder `local` (relative to the project).
    /// Option `delete` (default `false`) also removes files `local` does not have.
    ///
    /// ```rhai
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
        let mut opts = Options::new(options, options::keys("sync_dir"))?;
        let always = opts.always()?;
        let delete = opts.bool("delete")?.unwrap_or(false);
        done(&ctx, &host.0, always, || {
            files::sync(&host.0, local, remote, delete)
        })
    }

    /// Makes packages installed, with the host's manager (apt, dnf, yum or apk). The index is
    /// refreshed only when something must be installed.
    ///
    /// ```rhai
    /// host.packages(["nginx", "git"]);
    /// ```
    #[rhai_fn(name = "packages", return_raw)]
    pub fn packages(
        ctx: NativeCallContext,
        host: &mut Host,
        names: Array,
    ) -> Result<bool, Box<EvalAltResult>> {
        let names = reveal::array(&ctx, &host.0, names)?;
        let names = strings(names, "package names")?;
        let always = false;
        done(&ctx, &host.0, always, || {
            packages::packages(&host.0, &names, PackageState::Present)
        })
    }

    /// Packages with option `state`: `present` (default), `absent` or `latest`.
    ///
    /// ```rhai
    /// host.packages(["telnet"], #{ state: "absent" });
    /// ```
    #[rhai_fn(name = "packages", return_raw)]
    pub fn packages_with(
        ctx: NativeCallContext,
        host: &mut Host,
        names: Array,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let options = reveal::map(&ctx, &host.0, options)?;
        let names = reveal::array(&ctx, &host.0, names)?;
        let mut opts = Options::new(options, options::keys("packages"))?;
        let always = opts.always()?;
        let wanted =
            state(&mut opts, &["present", "absent", "latest"])?.unwrap_or_else(|| "present".into());
        let wanted = PackageState::parse(&wanted)?;
        let names = strings(names, "package names")?;
        done(&ctx, &host.0, always, || {
            packages::packages(&host.0, &names, wanted)
        })
    }

    /// Makes user `name` exist. Options: `shell`, `home`, `group` (the primary group),
    /// `groups` (supplementary, added), `system` (a system account), `state` (`present` or
    /// `absent`).
    ///
    /// ```rhai
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
        let mut opts = Options::new(options, options::keys("user"))?;
        let always = opts.always()?;
        let spec = UserSpec {
            shell: opts.string("shell")?,
            home: opts.string("home")?,
            group: opts.string("group")?,
            groups: opts.strings("groups")?.unwrap_or_default(),
            system: opts.bool("system")?.unwrap_or(false),
            absent: state(&mut opts, &["present", "absent"])?.as_deref() == Some("absent"),
        };
        done(&ctx, &host.0, always, || system::user(&host.0, name, &spec))
    }

    /// Makes group `name` exist. Options: `system`, `state` (`present` or `absent`).
    ///
    /// ```rhai
    /// host.group("deploy", #{});
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
        let mut opts = Options::new(options, options::keys("group"))?;
        let always = opts.always()?;
        let system = opts.bool("system")?.unwrap_or(false);
        let absent = state(&mut opts, &["present", "absent"])?.as_deref() == Some("absent");
        done(&ctx, &host.0, always, || {
            system::group(&host.0, name, system, absent)
        })
    }

    /// Makes public `keys` present in `user`'s `~/.ssh/authorized_keys`. Options: `state`
    /// (`present` or `absent`), `exclusive` (the keys are the whole set: others are removed).
    ///
    /// ```rhai
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
        let mut opts = Options::new(options, options::keys("authorized_keys"))?;
        let always = opts.always()?;
        let absent = state(&mut opts, &["present", "absent"])?.as_deref() == Some("absent");
        let exclusive = opts.bool("exclusive")?.unwrap_or(false);
        let keys = strings(keys, "keys")?;
        done(&ctx, &host.0, always, || {
            system::authorized_keys(&host.0, user, &keys, absent, exclusive)
        })
    }

    /// Brings a service to a state. Options: `state` (`started`, `stopped`, `restarted`,
    /// `reloaded`), `enabled` (start at boot), `manager` (`systemd`, `supervisor`, `runit` or
    /// `direct`: the daemon's own commands, on hosts without an init system; when absent,
    /// systemd if the `init` fact says so, else `direct` for a daemon weft knows (nginx,
    /// haproxy, supervisor, keepalived, postgresql, redis-server) or given `commands`, else
    /// supervisor or runit), `config` (supervisor's config file, when it is not where
    /// `supervisorctl` looks), `commands` (`#{ start, stop, reload, status }`: shell commands
    /// of a daemon weft does not know, used without an init system), `daemon_reload`
    /// (systemd: run `systemctl daemon-reload` first when systemd says the unit's files
    /// changed since it read them, or it has not loaded the unit yet; other managers ignore
    /// it), `always`. Returns whether it changed anything. Without an init system nothing
    /// starts at boot, so `enabled` is left alone there.
    ///
    /// ```rhai
    /// host.service("nginx", #{ state: "started", enabled: true });
    /// host.service("app", #{ state: "started", daemon_reload: true });
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
        let mut opts = Options::new(options, options::keys("service"))?;
        let always = opts.always()?;
        let wanted = state(&mut opts, &["started", "stopped", "restarted", "reloaded"])?;
        let enabled = opts.bool("enabled")?;
        let spec = ServiceSpec {
            running: match wanted.as_deref() {
                Some("started") => Some(true),
                Some("stopped") => Some(false),
                _ => None,
            },
            enabled,
            driver: driver_spec(&mut opts)?,
            daemon_reload: opts.bool("daemon_reload")?.unwrap_or(false),
        };
        let mut changed = done(&ctx, &host.0, always, || {
            services::service(&host.0, name, &spec)
        })?;
        let action = match wanted.as_deref() {
            Some("restarted") => Some("restart"),
            Some("reloaded") => Some("reload"),
            _ => None,
        };
        if let Some(action) = action {
            changed |= done(&ctx, &host.0, always, || {
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
    /// ```
    #[rhai_fn(name = "service_running", return_raw)]
    pub fn service_running(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        service_running_with(ctx, host, name, Map::new())
    }

    /// Whether service `name` runs, with the options `manager`, `config` and `commands` of
    /// `service`.
    ///
    /// ```rhai
    /// let up = host.service_running("app", #{ manager: "supervisor" });
    /// ```
    #[rhai_fn(name = "service_running", return_raw)]
    pub fn service_running_with(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let options = reveal::map(&ctx, &host.0, options)?;
        let mut opts = Options::new(options, options::keys("service_running"))?;
        let spec = driver_spec(&mut opts)?;
        services::running(&host.0, name, &spec).map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Asks for `action` (`reload` or `restart`) of a service once, when the goal ends
    /// successfully: call it when something the service reads has changed.
    ///
    /// ```rhai
    /// if host.template("nginx/site.conf.hbs", "/etc/nginx/sites-enabled/app", #{}) {
    ///     host.notify("nginx", "reload");
    /// }
    /// ```
    #[rhai_fn(name = "notify", return_raw)]
    pub fn notify(
        ctx: NativeCallContext,
        host: &mut Host,
        service: &str,
        action: &str,
    ) -> Result<(), Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; service);
        if !matches!(action, "reload" | "restart") {
            return Err(format!("notify: action `{action}` is not `reload` or `restart`").into());
        }
        host.0.notify(service, action, None, None);
        Ok(())
    }

    /// Asks for `action` of a service once, at the end of the goal, with options `manager`
    /// and `config` as for `service`.
    ///
    /// ```rhai
    /// host.notify("app", "restart", #{ manager: "supervisor" });
    /// ```
    #[rhai_fn(name = "notify", return_raw)]
    pub fn notify_with(
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
        let mut opts = Options::new(options, options::keys("notify"))?;
        let manager = opts.string("manager")?;
        if let Some(m) = &manager {
            ServiceManager::parse(m)?;
        }
        host.0
            .notify(service, action, manager, opts.string("config")?);
        Ok(())
    }

    /// Makes a cron entry `name` (in `/etc/cron.d/weft-NAME`). Options: `schedule` (five
    /// fields or `@daily`), `command`, `user` (default `root`), `state` (`present`, `absent`).
    ///
    /// ```rhai
    /// host.cron("backup", #{ schedule: "15 3 * * *", command: "/usr/local/bin/backup" });
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
        let mut opts = Options::new(options, options::keys("cron"))?;
        let always = opts.always()?;
        let absent = state(&mut opts, &["present", "absent"])?.as_deref() == Some("absent");
        let schedule = opts.string("schedule")?.unwrap_or_default();
        let command = opts.string("command")?.unwrap_or_default();
        if !absent && (schedule.is_empty() || command.is_empty()) {
            return Err("cron: `schedule` and `command` are required".into());
        }
        let user = opts.string("user")?.unwrap_or_else(|| "root".into());
        done(&ctx, &host.0, always, || {
            system::cron(&host.0, name, &schedule, &command, &user, absent)
        })
    }

    /// Makes `dest` a git checkout of `repo`. Options: `version` (branch, tag or commit;
    /// default `main`), `key` (a deploy key file on the host).
    ///
    /// ```rhai
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
        let mut opts = Options::new(options, options::keys("git"))?;
        let always = opts.always()?;
        let version = opts.string("version")?.unwrap_or_else(|| "main".into());
        let key = opts.string("key")?;
        done(&ctx, &host.0, always, || {
            system::git(&host.0, repo, dest, &version, key.as_deref())
        })
    }

    /// Makes `path` a Python virtualenv. Option: `python` (default `python3`).
    ///
    /// ```rhai
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
        let mut opts = Options::new(options, options::keys("virtualenv"))?;
        let always = opts.always()?;
        let python = opts.string("python")?;
        done(&ctx, &host.0, always, || {
            system::virtualenv(&host.0, path, python.as_deref())
        })
    }

    /// Installs into the virtualenv `venv`. Options: `packages` (requirement strings, or
    /// paths on the host of a project folder, sdist or wheel, which are always installed),
    /// `requirements` (a requirements file on the host), `always`.
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
        let mut opts = Options::new(options, options::keys("pip"))?;
        let always = opts.always()?;
        let packages = opts.strings("packages")?.unwrap_or_default();
        let requirements = opts.string("requirements")?;
        done(&ctx, &host.0, always, || {
            system::pip(&host.0, venv, &packages, requirements.as_deref())
        })
    }

    /// Extracts the tar.gz `archive` (a file on the host) into `dest`, unless `dest` already
    /// holds `marker` (a path inside the archive).
    ///
    /// ```rhai
    /// host.extract("/tmp/app.tar.gz", "/srv/app/releases/42", "app.py");
    /// ```
    #[rhai_fn(name = "extract", return_raw)]
    pub fn extract(
        ctx: NativeCallContext,
        host: &mut Host,
        archive: &str,
        dest: &str,
        marker: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; archive, dest, marker);
        extract_with(ctx, host, archive, dest, marker, Map::new())
    }

    /// Extracts `archive` into `dest` unless it holds `marker`, with option `always`.
    ///
    /// ```rhai
    /// host.extract("/tmp/app.tar.gz", "/srv/app/releases/42", "app.py", #{ always: true });
    /// ```
    #[rhai_fn(name = "extract", return_raw)]
    pub fn extract_with(
        ctx: NativeCallContext,
        host: &mut Host,
        archive: &str,
        dest: &str,
        marker: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; archive, dest, marker);
        let options = reveal::map(&ctx, &host.0, options)?;
        let always = Options::new(options, options::keys("extract"))?.always()?;
        done(&ctx, &host.0, always, || {
            system::extract(&host.0, archive, dest, marker)
        })
    }

    /// Packs the folder `source` (on the host) into the tar.gz `archive`, unless it exists.
    ///
    /// ```rhai
    /// host.archive("/srv/app/build", "/srv/app/build.tar.gz");
    /// ```
    #[rhai_fn(name = "archive", return_raw)]
    pub fn archive(
        ctx: NativeCallContext,
        host: &mut Host,
        source: &str,
        archive: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; source, archive);
        archive_with(ctx, host, source, archive, Map::new())
    }

    /// Packs `source` into `archive` unless it exists, with option `always`.
    ///
    /// ```rhai
    /// host.archive("/srv/app/build", "/srv/app/build.tar.gz", #{ always: true });
    /// ```
    #[rhai_fn(name = "archive", return_raw)]
    pub fn archive_with(
        ctx: NativeCallContext,
        host: &mut Host,
        source: &str,
        archive: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; source, archive);
        let options = reveal::map(&ctx, &host.0, options)?;
        let always = Options::new(options, options::keys("archive"))?.always()?;
        done(&ctx, &host.0, always, || {
            system::archive(&host.0, source, archive)
        })
    }

    /// `file(path, options)` with no options: the file exists, content kept.
    ///
    /// ```rhai
    /// host.file("/var/log/app.log");
    /// ```
    #[rhai_fn(name = "file", return_raw)]
    pub fn file_plain(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        file(ctx, host, path, Map::new())
    }

    /// `user(name, options)` with no options: the user exists.
    ///
    /// ```rhai
    /// host.user("deploy");
    /// ```
    #[rhai_fn(name = "user", return_raw)]
    pub fn user_plain(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        user(ctx, host, name, Map::new())
    }

    /// `group(name, options)` with no options: the group exists.
    ///
    /// ```rhai
    /// host.group("web");
    /// ```
    #[rhai_fn(name = "group", return_raw)]
    pub fn group_plain(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        group(ctx, host, name, Map::new())
    }

    /// `authorized_keys(user, keys, options)` with no options: the keys are present.
    ///
    /// ```rhai
    /// host.authorized_keys("deploy", [key]);
    /// ```
    #[rhai_fn(name = "authorized_keys", return_raw)]
    pub fn authorized_keys_plain(
        ctx: NativeCallContext,
        host: &mut Host,
        user: &str,
        keys: Array,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; user);
        let keys = reveal::array(&ctx, &host.0, keys)?;
        authorized_keys(ctx, host, user, keys, Map::new())
    }

    /// `git(repo, dest, options)` with no options: the `main` branch.
    ///
    /// ```rhai
    /// host.git("https://example.com/app.git", "/srv/app");
    /// ```
    #[rhai_fn(name = "git", return_raw)]
    pub fn git_plain(
        ctx: NativeCallContext,
        host: &mut Host,
        repo: &str,
        dest: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; repo, dest);
        git(ctx, host, repo, dest, Map::new())
    }

    /// `virtualenv(path, options)` with no options: the host's `python3`.
    ///
    /// ```rhai
    /// host.virtualenv("/srv/app/venv");
    /// ```
    #[rhai_fn(name = "virtualenv", return_raw)]
    pub fn virtualenv_plain(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        virtualenv(ctx, host, path, Map::new())
    }

    /// `sync_dir(local, remote, options)` with no options: nothing is deleted.
    ///
    /// ```rhai
    /// host.sync_dir("site", "/srv/www");
    /// ```
    #[rhai_fn(name = "sync_dir", return_raw)]
    pub fn sync_dir_plain(
        ctx: NativeCallContext,
        host: &mut Host,
        local: &str,
        remote: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; local, remote);
        sync_dir(ctx, host, local, remote, Map::new())
    }
}
