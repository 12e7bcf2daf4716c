//! The `Host` type scripts receive as a goal's first parameter.

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::error::host_error_at;
use super::reveal::{self, reveal_str};
use super::{options, to_dynamic, vars_from_map, ApiResult};
use crate::exec::ops::files;
use crate::exec::session::{HostSession, RunOptions};
use crate::transport::download::DownloadLimits;
use crate::transport::ExecOutput;

/// The host a goal runs on; cheap to clone, shared with the runner.
#[derive(Clone)]
pub struct Host(pub Arc<HostSession>);

/// What `run` returns: `#{ stdout, stderr, code, skipped }`; a command `--check` skipped has
/// no exit code (`code: ()`), so it never reads as a success.
fn output_map(output: Option<ExecOutput>) -> Map {
    let skipped = output.is_none();
    let output = output.unwrap_or_default();
    let mut map = Map::new();
    map.insert("stdout".into(), output.stdout.into());
    map.insert("stderr".into(), output.stderr.into());
    let code = if skipped {
        Dynamic::UNIT
    } else {
        Dynamic::from_int(output.code.into())
    };
    map.insert("code".into(), code);
    map.insert("skipped".into(), skipped.into());
    map
}

/// Once per process is enough to learn that `check: false` is now `allow_fail: true`.
static CHECK_OPTION_WARNED: std::sync::Once = std::sync::Once::new();

fn run_options(host: &Host, map: Map) -> ApiResult<RunOptions> {
    let o: options::RunCommandOptions = options::read(map)?;
    let defaults = RunOptions::default();
    let allow_fail = match (o.allow_fail, o.check) {
        (Some(allow), _) => allow,
        // `check` meant four things; the old spelling keeps working for one release.
        (None, Some(check)) => {
            CHECK_OPTION_WARNED.call_once(|| {
                host.0.log(
                    "warning: run option `check: false` is deprecated: write `allow_fail: true`",
                )
            });
            !check
        }
        (None, None) => !defaults.fail_on_error,
    };
    Ok(RunOptions {
        fail_on_error: !allow_fail,
        check_safe: o.check_safe.unwrap_or(defaults.check_safe),
        quiet: o.quiet.unwrap_or(defaults.quiet),
        timeout: o.timeout.map(|t| t.0),
        stdin: o.stdin,
        sudo: o.sudo.and_then(|s| s.0),
        always: o.always.unwrap_or(defaults.always),
        carried: false,
    })
}

fn argv(args: Array) -> ApiResult<String> {
    let words: Vec<String> = args.into_iter().map(|a| a.to_string()).collect();
    if words.is_empty() {
        return Err("run: the argument list is empty".into());
    }
    Ok(crate::shell::join(&words))
}

fn run_command(
    ctx: &NativeCallContext,
    host: &Host,
    command: &str,
    options: RunOptions,
) -> ApiResult<Map> {
    let output = host
        .0
        .timed("run", || host.0.run(command, &options))
        .map_err(|e| host_error_at(ctx, &host.0, e))?;
    Ok(output_map(output))
}

/// What scripts see of a dump: `#{ path, bytes, sha256 }`.
pub fn dumped_map(dumped: &crate::exec::dump::Dumped) -> Map {
    let mut map = Map::new();
    map.insert("path".into(), dumped.path.display().to_string().into());
    map.insert(
        "bytes".into(),
        Dynamic::from_int(i64::try_from(dumped.bytes).unwrap_or(i64::MAX)),
    );
    map.insert("sha256".into(), dumped.sha256.clone().into());
    map
}

/// Functions and properties of `Host`.
#[export_module]
pub mod host_api {
    use super::*;

    /// The host a goal runs on.
    pub type Host = super::Host;

    /// The host's name in the env, e.g. `app-0`.
    #[rhai_fn(get = "name", pure)]
    pub fn name(host: &mut Host) -> String {
        host.0.spec.name.clone()
    }

    /// How the host is reached: `user@addr:port`, or `localhost` on the local connector.
    #[rhai_fn(get = "address", pure)]
    pub fn address(host: &mut Host) -> String {
        host.0.spec.address.clone()
    }

    /// The roles the host plays in the env, in config order.
    #[rhai_fn(get = "roles", pure)]
    pub fn roles(host: &mut Host) -> Array {
        host.0.spec.roles.iter().map(|r| r.clone().into()).collect()
    }

    /// The host's variables, merged project → env → role → host.
    #[rhai_fn(get = "vars", pure)]
    pub fn vars(host: &mut Host) -> Map {
        to_dynamic(&serde_json::Value::Object(host.0.spec.vars.clone()))
            .try_cast::<Map>()
            .unwrap_or_default()
    }

    /// Runs a shell command on the host and returns `#{stdout, stderr, code, skipped}`.
    /// A non-zero exit fails the goal (unless `allow_fail`). Under `--check` the command is
    /// skipped and returns `#{ skipped: true, code: () }` (unless `check_safe`).
    ///
    /// ```rhai
    /// let kernel = host.run("uname -r").stdout;
    /// let r = host.run("systemctl is-active nginx", #{ allow_fail: true, check_safe: true });
    /// if r.code != 0 { log("nginx is down"); }
    /// ```
    #[rhai_fn(name = "run", return_raw)]
    pub fn run(
        ctx: NativeCallContext,
        host: &mut Host,
        command: &str,
        options: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; command);
        let options = reveal::map(&ctx, &host.0, options)?;
        run_command(&ctx, host, command, run_options(host, options)?)
    }

    /// Runs a program with arguments, with the options of `run(command, options)`; each
    /// argument is quoted, so none is ever read by the shell.
    ///
    /// ```rhai
    /// host.run(["mkdir", "-p", dir]);
    /// host.run(["test", "-f", path], #{ allow_fail: true, check_safe: true });
    /// ```
    #[rhai_fn(name = "run", return_raw)]
    pub fn run_argv(
        ctx: NativeCallContext,
        host: &mut Host,
        args: Array,
        options: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        let options = reveal::map(&ctx, &host.0, options)?;
        let args = reveal::array(&ctx, &host.0, args)?;
        run_command(&ctx, host, &argv(args)?, run_options(host, options)?)
    }

    /// Reads a file of the host as text; `()` when it does not exist.
    ///
    /// ```rhai
    /// let conf = host.read_file("/etc/hostname");
    /// ```
    #[rhai_fn(name = "read_file", return_raw)]
    pub fn read_file(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path);
        match host
            .0
            .read_file(path)
            .map_err(|e| host_error_at(&ctx, &host.0, e))?
        {
            Some(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned().into()),
            None => Ok(Dynamic::UNIT),
        }
    }

    /// Makes a file of the host hold exactly `content`, replacing it atomically.
    /// Returns `true` when it changed anything.
    ///
    /// ```rhai
    /// host.write_file("/etc/motd", "welcome\n");
    /// host.write_file("/usr/local/bin/hello", "#!/bin/sh\necho hi\n", #{ mode: "0755" });
    /// ```
    #[rhai_fn(name = "write_file", return_raw)]
    pub fn write_file(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        content: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; path, content);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::WriteFileOptions = options::read(options)?;
        let (mode, always) = (o.mode.map(|m| m.0), o.always);
        host.0
            .always(always, || {
                files::write_file(&host.0, path, content.as_bytes(), mode)
            })
            .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Copies a local file or folder (relative to the project) to the host, keeping modes and
    /// skipping files that are already the same. Returns `true` when it changed anything.
    ///
    /// ```rhai
    /// host.upload("dist/app.tar.gz", "/tmp/app.tar.gz");
    /// host.upload("dist/app.tar.gz", "/tmp/app.tar.gz", #{ always: true });
    /// ```
    #[rhai_fn(name = "upload", return_raw)]
    pub fn upload(
        ctx: NativeCallContext,
        host: &mut Host,
        local: &str,
        remote: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; local, remote);
        let options = reveal::map(&ctx, &host.0, options)?;
        let always = options::read::<options::UploadOptions>(options)?.always;
        let h = &host.0;
        h.always(always, || {
            h.timed("upload", || files::upload(h, local, remote))
        })
        .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Copies a file or folder of the host to `local` on this machine (relative to the
    /// project), creating its folder; `true`, as every copy changes the local file. Regular
    /// files and folders only: links are skipped (unless `follow_links`) and said on the
    /// host's output, as are devices, FIFOs and sockets; at most 10 GiB (or `max_size`).
    /// Under `--check` it only says what it would copy.
    ///
    /// ```rhai
    /// host.download("/var/log/app.log", "logs/app.log");
    /// host.download("/srv/app/current/logs", "logs", #{ follow_links: true, max_size: "2G" });
    /// ```
    #[rhai_fn(name = "download", return_raw)]
    pub fn download(
        ctx: NativeCallContext,
        host: &mut Host,
        remote: &str,
        local: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; remote, local);
        let options = reveal::map(&ctx, &host.0, options)?;
        let o: options::DownloadOptions = options::read(options)?;
        let mut limits = DownloadLimits::default();
        if let Some(follow) = o.follow_links {
            limits.follow_links = follow;
        }
        if let Some(size) = o.max_size {
            limits.max_bytes = crate::transport::download::parse_size(&size)
                .map_err(|why| format!("max_size: {why}"))?;
        }
        let h = &host.0;
        h.timed("download", || {
            h.download_to(remote, std::path::Path::new(local), limits)
        })
        .map(|()| true)
        .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Runs `command` on the host and streams its standard output, compressed with gzip on the
    /// host, into the file `local` of this machine (relative to the project), with memory flat
    /// for any size. The file is written under a hidden temporary name, its SHA-256 goes to
    /// `local + ".sha256"`, and only then is it renamed into place: an interrupted dump never
    /// looks complete. Returns `#{ path, bytes, sha256 }`, or `()` under `--check`. A non-zero
    /// exit fails the goal and leaves no file.
    ///
    /// ```rhai
    /// host.dump("sudo -u postgres pg_dump notes", "backups/notes.sql.gz");
    /// ```
    #[rhai_fn(name = "dump", return_raw)]
    pub fn dump(
        ctx: NativeCallContext,
        host: &mut Host,
        command: &str,
        local: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; command, local);
        let dumped = crate::exec::dump::dump(&host.0, command, local)
            .map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(dumped.map_or(Dynamic::UNIT, |d| dumped_map(&d).into()))
    }

    /// Streams the file `local` of this machine (a gzip file that `dump` made) into the
    /// standard input of `command` on the host, decompressed there, after checking it against
    /// `local + ".sha256"`: a corrupt or truncated file fails the goal before the host is
    /// touched. Returns `true` (`false` under `--check`, which only verifies).
    ///
    /// With `into` (a path on the host, with `owner`, `group`, `mode`), the command runs in a private folder made beside `into` (random name, mode 0700) and leaves
    /// there, under the name `new`, the file or folder that replaces `into`. `new` then gets
    /// `owner` and `group` (with `chown -R`) and `mode`, and is renamed over `into` (a folder
    /// there is moved aside first): nothing is written, owned or changed through a name that
    /// another user of the host could create or swap.
    ///
    /// ```rhai
    /// host.load("backups/notes.sql.gz", "sudo -u postgres psql -q notes");
    /// host.load("backups/redis.rdb.gz", "cat > new", #{ into: "/var/lib/redis/dump.rdb", owner: "redis", group: "redis", mode: "0660" });
    /// ```
    #[rhai_fn(name = "load", return_raw)]
    pub fn load(
        ctx: NativeCallContext,
        host: &mut Host,
        local: &str,
        command: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; local, command);
        let options = reveal::map(&ctx, &host.0, options)?;
        load_all(ctx, host, vec![local.into()], command, options)
    }

    /// `load` of several files, each streamed into `command` in turn, with the options of
    /// `load` (`into` puts what all of them left as `new` in place once, after the last).
    ///
    /// ```rhai
    /// host.load(["a.tar.gz", "b.tar.gz"], "mkdir -p new && tar -x -C new -f -", #{ into: "/srv/app/shared/uploads", owner: "app", mode: "0755" });
    /// ```
    #[rhai_fn(name = "load", return_raw)]
    pub fn load_all(
        ctx: NativeCallContext,
        host: &mut Host,
        locals: Array,
        command: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; command);
        let options = reveal::map(&ctx, &host.0, options)?;
        let locals = reveal::array(&ctx, &host.0, locals)?;
        let locals = options::strings(locals, "the files to load")?;
        if locals.is_empty() {
            return Err("load: the list of files is empty".into());
        }
        let o: options::LoadOptions = options::read(options)?;
        let placement = crate::exec::dump::Placement {
            path: o.into.unwrap_or_default(),
            owner: o.owner,
            group: o.group,
            mode: o.mode.map(|m| m.0),
        };
        let h = &host.0;
        let loaded = if placement.path.is_empty() {
            if placement.owner.is_some() || placement.group.is_some() || placement.mode.is_some() {
                return Err(
                    "load: `owner`, `group` and `mode` are set on what replaces `into`: give `into` too"
                        .into(),
                );
            }
            locals.iter().try_fold(false, |loaded, local| {
                crate::exec::dump::load(h, local, command).map(|one| loaded || one)
            })
        } else {
            crate::exec::dump::load_into(h, &locals, command, &placement)
        };
        loaded.map_err(|e| host_error_at(&ctx, h, e))
    }

    /// Renders a template (looked up project → user → stdlib) with the host's variables and
    /// writes it to `dest`. Returns `true` when it changed anything.
    ///
    /// ```rhai
    /// host.template("hello/index.html.hbs", "www/index.html");
    /// ```
    #[rhai_fn(name = "template", return_raw)]
    pub fn template(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        dest: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name, dest);
        let h = &host.0;
        h.timed("template", || {
            files::template(h, name, dest, Default::default(), Default::default())
        })
        .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Renders a template with `vars` over the host's variables and writes it to `dest`.
    ///
    /// ```rhai
    /// host.template("hello/index.html.hbs", "www/index.html", #{ version: "v2" });
    /// ```
    #[rhai_fn(name = "template", return_raw)]
    pub fn template_with(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        dest: &str,
        vars: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name, dest);
        let vars = reveal::map(&ctx, &host.0, vars)?;
        let vars = vars_from_map(vars)?;
        let h = &host.0;
        h.timed("template", || {
            files::template(h, name, dest, vars, Default::default())
        })
        .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Renders a template with `vars` over the host's variables and returns the text.
    ///
    /// ```rhai
    /// let conf = host.render("hello/index.html.hbs", #{ version: "v2" });
    /// ```
    #[rhai_fn(name = "render", return_raw)]
    pub fn render(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        vars: Map,
    ) -> Result<String, Box<EvalAltResult>> {
        reveal_str!(ctx, &host.0; name);
        let vars = reveal::map(&ctx, &host.0, vars)?;
        let vars = vars_from_map(vars)?;
        files::render(&host.0, name, vars).map_err(|e| host_error_at(&ctx, &host.0, e))
    }
}

/// The functions above whose options may be left out, each registered a second time without
/// its option map: `host.run(cmd)` is `host.run(cmd, #{})`.
pub fn register_short_forms(module: &mut rhai::Module) {
    short_form!(module, "run", host_api::run(command: &str) -> Map);
    short_form!(module, "run", host_api::run_argv(args: Array) -> Map);
    short_form!(module, "write_file", host_api::write_file(path: &str, content: &str));
    short_form!(module, "upload", host_api::upload(local: &str, remote: &str));
    short_form!(module, "download", host_api::download(remote: &str, local: &str));
    short_form!(module, "load", host_api::load(local: &str, command: &str));
}
