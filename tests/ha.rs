//! The load-balancer tier on real `local` machines: two haproxy lbs share a virtual IP through
//! keepalived, so the site keeps its address when one lb stops; a stopped or drained app
//! machine costs no request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::webstack::{answers, env_up, example, get_within};

/// One GET of `/` as a client with a 5 s timeout would make it: the body of a 200, or why
/// there was none.
fn get(addr: &str) -> Result<String, String> {
    let timeout = Duration::from_secs(5);
    get_within(addr, "/", timeout, timeout)
}

/// What a client saw: each request's start, end and outcome.
pub(crate) struct Seen {
    pub(crate) requests: Vec<(Instant, Instant, Result<String, String>)>,
}

impl Seen {
    pub(crate) fn failed(&self) -> Vec<&String> {
        self.requests
            .iter()
            .filter_map(|(_, _, r)| r.as_ref().err())
            .collect()
    }

    /// From the start of the first failed request to the end of the first request that
    /// succeeded after the last failure: how long the site was not answering.
    fn error_window(&self) -> Duration {
        let Some(first) = self.requests.iter().position(|(_, _, r)| r.is_err()) else {
            return Duration::ZERO;
        };
        let last = self
            .requests
            .iter()
            .rposition(|(_, _, r)| r.is_err())
            .unwrap_or(first);
        let back = self.requests[last + 1..]
            .iter()
            .find(|(_, _, r)| r.is_ok())
            .map_or(self.requests[last].1, |(_, end, _)| *end);
        back - self.requests[first].0
    }

    fn bodies(&self) -> Vec<&String> {
        self.requests
            .iter()
            .filter_map(|(_, _, r)| r.as_ref().ok())
            .collect()
    }
}

/// A client that asks `addr` continuously (every 20 ms, at most 20 000 requests) until
/// stopped.
pub(crate) struct Client {
    stop: Arc<AtomicBool>,
    /// How many requests were answered so far.
    answered: Arc<AtomicUsize>,
    thread: JoinHandle<Seen>,
}

impl Client {
    pub(crate) fn start(addr: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, answered, addr) = (stop.clone(), answered.clone(), addr.to_string());
            std::thread::spawn(move || {
                let mut requests = Vec::new();
                while !stop.load(Ordering::Relaxed) && requests.len() < 20_000 {
                    let start = Instant::now();
                    let result = get(&addr);
                    if result.is_ok() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    requests.push((start, Instant::now(), result));
                    std::thread::sleep(Duration::from_millis(20));
                }
                Seen { requests }
            })
        };
        Client {
            stop,
            answered,
            thread,
        }
    }

    /// Waits until `n` more requests than so far were answered (at most 30 s).
    pub(crate) fn wait_for_answers(&self, n: usize) {
        let target = self.answered.load(Ordering::Relaxed) + n;
        crate::harness::wait_for(
            &format!("{n} more answers"),
            Duration::from_secs(30),
            || self.answered.load(Ordering::Relaxed) >= target,
        );
    }

    /// Stops after `settle` more of asking; what it saw.
    pub(crate) fn finish(self, settle: Duration) -> Seen {
        std::thread::sleep(settle);
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client")
    }
}

/// The site's address from a deploy's output: `hello answers at http://ADDR:80/`, once.
pub(crate) fn site_address(stdout: &str) -> String {
    let urls: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split("hello answers at http://").nth(1))
        .collect();
    assert_eq!(urls.len(), 1, "one address for the site:\n{stdout}");
    urls[0].trim_end_matches('/').to_string()
}

/// Which lb `env_status` says holds the VIP.
pub(crate) fn holder(test: &Test, env: &str) -> String {
    let status = test.run(&["run", "env_status", "-e", env]);
    status.status(0);
    let holders: Vec<&str> = status
        .stdout
        .lines()
        .filter(|l| l.contains("held here (MASTER)"))
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(holders.len(), 1, "one lb holds the VIP:\n{}", status.stdout);
    holders[0].to_string()
}

/// The lb holding the VIP and the other one of a pair: either may win the first election.
pub(crate) fn pair(held: &str) -> (String, String) {
    let other = if held == "lb-0" { "lb-1" } else { "lb-0" };
    (held.to_string(), other.to_string())
}

/// hello-wsgi with `lbs` load balancers and `apps` app machines.
pub(crate) fn ha_example(lbs: u32, apps: u32) -> Test {
    let test = example();
    let config = test
        .read("weft.toml")
        .replace(
            "[env.dev.machines.lb]\ncount = 1",
            &format!("[env.dev.machines.lb]\ncount = {lbs}"),
        )
        .replace(
            "[env.dev.machines.app]\ncount = 2",
            &format!("[env.dev.machines.app]\ncount = {apps}"),
        );
    assert!(config.contains(&format!("lb]\ncount = {lbs}")));
    test.write("weft.toml", &config);
    test
}

#[test]
fn two_lbs_keep_the_site_on_its_virtual_ip_when_one_stops() {
    let test = ha_example(2, 2);
    let (_cleanup, up) = env_up(&test);
    up.stdout_has("created lb-1").stdout_has("deployed hello");
    let vip = site_address(&up.stdout);
    assert!(vip.starts_with("10.77.") && vip.ends_with(":80"), "{vip}");
    let first = answers(&vip, 10);
    assert!(first.iter().any(|a| a.ends_with("app-0")), "{first:?}");
    assert!(first.iter().any(|a| a.ends_with("app-1")), "{first:?}");
    let (held, other) = pair(&holder(&test, "dev"));

    // The lb holding the VIP stops under a client (once it is being answered): the VIP moves
    // to the other one and the site answers again within 3 s.
    let client = Client::start(&vip);
    client.wait_for_answers(10);
    test.run(&["cloud", "stop", &held, "-e", "dev"]).status(0);
    let seen = client.finish(Duration::from_secs(4));
    let window = seen.error_window();
    eprintln!(
        "lb failover: {} of {} requests failed, error window {} ms",
        seen.failed().len(),
        seen.requests.len(),
        window.as_millis()
    );
    assert!(
        window < Duration::from_secs(3),
        "error window {window:?}: {:?}",
        seen.failed()
    );
    assert!(seen.requests.last().is_some_and(|(_, _, r)| r.is_ok()));
    assert_eq!(holder(&test, "dev"), other);

    // The stopped lb comes back: it does not take the address back, and no request fails.
    let client = Client::start(&vip);
    test.run(&["cloud", "start", &held, "-e", "dev"]).status(0);
    let seen = client.finish(Duration::from_secs(3));
    assert!(seen.failed().is_empty(), "{:?}", seen.failed());
    assert!(seen.requests.len() > 20, "{}", seen.requests.len());
    assert_eq!(holder(&test, "dev"), other);

    // An app machine stops under the client (once it is being answered): not one request
    // fails.
    let client = Client::start(&vip);
    client.wait_for_answers(10);
    test.run(&["cloud", "stop", "app", "-o", "1", "-e", "dev"])
        .status(0);
    let seen = client.finish(Duration::from_secs(4));
    assert!(
        seen.failed().is_empty(),
        "{} failed: {:?}",
        seen.failed().len(),
        seen.failed()
    );
    assert!(seen.bodies().last().is_some_and(|b| b.ends_with("app-0")));
    test.run(&["cloud", "start", "app", "-o", "1", "-e", "dev"])
        .status(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(&vip, 2).iter().any(|a| a.ends_with("app-1")) {
        assert!(Instant::now() < deadline, "app-1 does not serve again");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Draining app-0 (through haproxy's runtime API) under the client: no request fails, app-0
    // gets none while drained, also after haproxy reloads, and serves again once undrained.
    let client = Client::start(&vip);
    test.run(&["run", "hello_drain", "app-0", "-e", "dev"])
        .status(0)
        .stdout_has("hello/app-0: drain");
    let drained = Instant::now();
    test.run(&["run", "haproxy_reload", "-r", "lb", "-e", "dev"])
        .status(0);
    // Enough answers after the reload to show it kept app-0 drained.
    client.wait_for_answers(15);
    let undrain = Instant::now();
    test.run(&["run", "hello_undrain", "app-0", "-e", "dev"])
        .status(0)
        .stdout_has("hello/app-0: ready");
    let seen = client.finish(Duration::from_secs(2));
    assert!(seen.failed().is_empty(), "{:?}", seen.failed());
    let while_drained: Vec<&String> = seen
        .requests
        .iter()
        .filter(|(start, end, _)| *start > drained && *end < undrain)
        .filter_map(|(_, _, r)| r.as_ref().ok())
        .collect();
    assert!(while_drained.len() > 10, "{while_drained:?}");
    assert!(
        while_drained.iter().all(|b| b.ends_with("app-1")),
        "{while_drained:?}"
    );
    let after = answers(&vip, 6);
    assert!(after.iter().any(|a| a.ends_with("app-0")), "{after:?}");
    test.run(&["run", "hello_drain", "app-9", "-e", "dev"])
        .status(1)
        .stderr_has("app-9 is not a machine of role app in env dev");
}

/// The base64 lines of the private key in the PEM at `rel` of the project.
pub(crate) fn key_lines(test: &Test, rel: &str) -> Vec<String> {
    let pem = test.read(rel);
    let key = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END").next())
        .unwrap_or_else(|| panic!("{rel} holds a key"));
    let lines: Vec<String> = key
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    assert!(!lines.is_empty());
    lines
}

#[track_caller]
pub(crate) fn lacks_key(text: &str, key: &[String], what: &str) {
    for line in key {
        assert!(
            !text.contains(line.as_str()),
            "{what} shows the private key:\n{text}"
        );
    }
}

#[test]
fn tls_at_the_virtual_ip_uses_a_self_signed_certificate_that_never_shows_its_key() {
    let test = ha_example(2, 1);
    let config = test.read("weft.toml").replace(
        "lb_role = \"lb\"",
        "lb_role = \"lb\"\ntls = true\ntls_redirect = true",
    );
    test.write("weft.toml", &config);
    let _cleanup = crate::harness::Destroy {
        test: &test,
        env: "dev",
    };
    let up = test.run(&["run", "env_up", "-e", "dev", "--diff"]);
    up.status(0).stdout_has("made a self-signed certificate");
    let urls: Vec<&str> = up
        .stdout
        .lines()
        .filter_map(|l| l.split("hello answers at https://").nth(1))
        .collect();
    assert_eq!(urls.len(), 1, "{}", up.stdout);
    let vip = urls[0]
        .trim_end_matches('/')
        .trim_end_matches(":443")
        .to_string();
    let key = key_lines(&test, ".weft/secrets/dev/hello-tls.pem");
    lacks_key(&up.stdout, &key, "env_up --diff");
    lacks_key(&up.stderr, &key, "env_up --diff (stderr)");

    // curl trusts the env's certificate for the VIP; HTTP redirects to HTTPS.
    let cacert = test.path().join(".weft/secrets/dev/hello-tls.crt");
    let curl = |args: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .args(args)
            .output()
            .expect("curl runs")
    };
    // The VIP answers over TLS with the env's certificate.
    let https_ok = || {
        let https = curl(&[
            "--cacert",
            &cacert.display().to_string(),
            &format!("https://{vip}/"),
        ]);
        assert!(
            https.status.success(),
            "{}",
            String::from_utf8_lossy(&https.stderr)
        );
        https
    };
    let https = https_ok();
    assert_eq!(
        String::from_utf8_lossy(&https.stdout).trim(),
        "hello 1.0 from app-0"
    );
    let untrusted = curl(&[&format!("https://{vip}/")]);
    assert!(
        !untrusted.status.success(),
        "a self-signed certificate is not trusted by default"
    );
    let http = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://{vip}/"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&http.stdout),
        format!("301 https://{vip}/")
    );
    // On the lbs the PEM is root's alone.
    test.ssh(
        "dev",
        "lb-1",
        &["stat -c '%a %U' /etc/haproxy/certs/hello.pem"],
    )
    .status(0)
    .stdout_has("600 root");

    // A deploy with --json and --diff after the PEM is removed from an lb writes it again,
    // and shows no key either.
    test.ssh("dev", "lb-0", &["rm /etc/haproxy/certs/hello.pem"])
        .status(0);
    let again = test.run(&["run", "hello_deploy", "-e", "dev", "--json", "--diff"]);
    again.status(0).stdout_has("/etc/haproxy/certs/hello.pem");
    lacks_key(&again.stdout, &key, "hello_deploy --json --diff");
    lacks_key(&again.stderr, &key, "hello_deploy --json --diff (stderr)");
    // The certificate was made once: the same one after the second deploy.
    assert_eq!(key, key_lines(&test, ".weft/secrets/dev/hello-tls.pem"));
    https_ok();
}

/// A project with hello-wsgi's app whose env `dev` has `lbs` lbs (no machines are made).
pub(crate) fn settings_project(lbs: u32, app_extra: &str) -> Test {
    let test = ha_example(lbs, 1);
    let config = test.read("weft.toml").replace(
        "lb_role = \"lb\"",
        &format!("lb_role = \"lb\"\n{app_extra}"),
    );
    test.write("weft.toml", &config);
    test
}

/// `hello_deploy` fails with `message`, having touched no host and made no machine.
#[track_caller]
pub(crate) fn refused(test: &Test, message: &str) {
    let _cleanup = crate::harness::Destroy { test, env: "dev" };
    let out = test.run(&["run", "hello_deploy", "-e", "dev"]);
    out.status(1)
        .stdout_has(message)
        .stdout_lacks("hello_lock")
        .stdout_lacks("building");
    let list = test.run(&["cloud", "list", "-e", "dev", "--json"]);
    assert_eq!(list.stdout.trim(), "[]", "{}", list.stdout);
}

#[test]
fn a_vip_with_one_lb_or_outside_the_network_is_refused_before_any_host() {
    refused(
        &settings_project(1, "vip = \"10.77.200.1\""),
        "needs two or more machines of role lb to move between; env dev has 1",
    );
    refused(
        &settings_project(2, "vip = \"192.168.7.7\""),
        "vip 192.168.7.7 is outside the local machines' network 10.77.0.0/16",
    );
    // A VIP that is no address stops weft at its line in weft.toml.
    settings_project(2, "vip = \"10.77.0.300\"")
        .run(&["run", "hello_deploy", "-e", "dev"])
        .status(2)
        .stderr_has("`vip` of [apps.hello] is `10.77.0.300`, not an IPv4 address")
        .stderr_has("weft.toml:")
        .stdout_lacks("hello_lock");
}

#[test]
fn a_certificate_that_does_not_parse_or_match_its_key_is_refused_before_any_host() {
    let test = settings_project(1, "tls = true\ntls_cert = \"certs/site.pem\"");
    test.write("certs/site.pem", "not a certificate\n");
    refused(
        &test,
        "tls_cert = \"certs/site.pem\" of [apps.hello]: the file holds no certificate that parses",
    );
    // A real certificate with another certificate's key.
    let dir = test.path().join("certs");
    let make = |name: &str| {
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .args(["-days", "1", "-subj", "/CN=site", "-keyout"])
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(dir.join(format!("{name}.crt")))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success());
    };
    make("a");
    make("b");
    let cert = test.read("certs/a.crt");
    test.write(
        "certs/site.pem",
        &(cert.clone() + &test.read("certs/b.key")),
    );
    refused(&test, "the private key does not match the certificate");
    test.write("certs/site.pem", &cert);
    refused(&test, "the file holds no private key that parses");
}

#[test]
fn two_envs_with_two_lbs_each_on_one_bridge_keep_their_virtual_ips() {
    let test = ha_example(2, 1);
    let config = test.read("weft.toml")
        + "\n[env.stage]\nprovider = \"local\"\n\n[env.stage.machines.app]\ncount = 1\n\n\
           [env.stage.machines.lb]\ncount = 2\n";
    test.write("weft.toml", &config);
    let _dev = crate::harness::Destroy {
        test: &test,
        env: "dev",
    };
    let _stage = crate::harness::Destroy {
        test: &test,
        env: "stage",
    };
    let mut vips = Vec::new();
    let mut router_ids = Vec::new();
    for env in ["dev", "stage"] {
        let up = test.run(&["run", "env_up", "-e", env]);
        up.status(0);
        let vip = site_address(&up.stdout);
        assert_eq!(answers(&vip, 2).len(), 2);
        let conf = test.ssh(
            env,
            "lb-1",
            &["grep virtual_router_id /etc/keepalived/keepalived.conf"],
        );
        conf.status(0);
        router_ids.push(conf.stdout.trim().to_string());
        vips.push(vip);
    }
    assert_ne!(vips[0], vips[1], "two envs share a VIP");
    assert_ne!(
        router_ids[0], router_ids[1],
        "two envs share a VRRP router id"
    );
    let (dev_held, dev_other) = pair(&holder(&test, "dev"));
    let stage_held = holder(&test, "stage");

    // dev's lb holding its VIP stops: dev's VIP moves to dev's other lb, stage's stays where it
    // is and never misses a request.
    let client = Client::start(&vips[1]);
    test.run(&["cloud", "stop", &dev_held, "-e", "dev"])
        .status(0);
    let seen = client.finish(Duration::from_secs(4));
    assert!(seen.failed().is_empty(), "stage: {:?}", seen.failed());
    assert_eq!(holder(&test, "stage"), stage_held);
    assert_eq!(holder(&test, "dev"), dev_other);
    assert_eq!(answers(&vips[0], 2).len(), 2);
    assert_eq!(answers(&vips[1], 2).len(), 2);
    // Re-running a deploy keeps each env's address.
    let again = test.run(&["run", "hello_deploy", "-e", "stage"]);
    again.status(0);
    assert_eq!(site_address(&again.stdout), vips[1]);
}
