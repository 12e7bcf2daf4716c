//! ACME certificates on a pair of lbs (issue 35), against Pebble, Let's Encrypt's test server
//! (Debian's `pebble`), run on this machine: its DNS answers come from `pebble-challtestsrv`,
//! where the test points the site's names at the env's VIP. Nothing here reaches a real ACME
//! server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ha::{
    ha_example, holder, key_lines, lacks_key, pair, settings_project, site_address, Client,
};
use crate::harness::{wait_for, Destroy};

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `cmd` (a test set-up step) and panics with its output when it fails.
#[track_caller]
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pebble and its DNS server, stopped when dropped.
struct Pebble {
    dir: tempfile::TempDir,
    pebble: Child,
    dns: Child,
    /// The directory URL.
    directory: String,
    management: u16,
    dns_management: u16,
}

impl Pebble {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name).display().to_string();
        // Pebble's own HTTPS: a CA of the test's, and a certificate for 127.0.0.1 it signs.
        run(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=weft test ACME CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]));
        run(Command::new("openssl").args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]));
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("ext");
        run(Command::new("openssl").args([
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("server.ext"),
            "-out",
            &p("server.pem"),
        ]));
        let (port, management) = (free_port(), free_port());
        let (dns_port, dns_management) = (free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": p("server.pem"),
            "privateKey": p("server.key"),
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).expect("config");
        // No name resolves unless the test adds it: a domain without a record must fail.
        let dns = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-defaultIPv4", "", "-defaultIPv6", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv runs (scripts/test.sh installs Debian's pebble)");
        let pebble = Command::new("pebble")
            .args(["-config", &p("pebble.json")])
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // Validate at once, never reject a nonce, and validate every order afresh.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble runs (scripts/test.sh installs Debian's pebble)");
        let pebble = Pebble {
            dir,
            pebble,
            dns,
            directory: format!("https://127.0.0.1:{port}/dir"),
            management,
            dns_management,
        };
        let listening = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        wait_for("pebble", Duration::from_secs(20), || {
            listening(port) && listening(management) && listening(dns_management)
        });
        pebble
    }

    /// The CA of Pebble's own HTTPS, which weft's `acme_ca` trusts.
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Points `name` at `address` in Pebble's DNS.
    fn add_a(&self, name: &str, address: &str) {
        let body = serde_json::json!({ "host": name, "addresses": [address] }).to_string();
        run(Command::new("curl").args([
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "-d",
            &body,
            &format!("http://127.0.0.1:{}/add-a", self.dns_management),
        ]));
    }

    /// The root that signs the certificates Pebble issues (a new one each run), for curl.
    fn issuing_root(&self) -> PathBuf {
        let path = self.dir.path().join("issuing-root.pem");
        let pem = run(Command::new("curl").args([
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "--cacert",
            &self.ca().display().to_string(),
            &format!("https://127.0.0.1:{}/roots/0", self.management),
        ]));
        std::fs::write(&path, pem).expect("root");
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.pebble.kill();
        let _ = self.dns.kill();
        let _ = self.pebble.wait();
        let _ = self.dns.wait();
    }
}

/// `curl` for `https://NAME/` with NAME at `vip`, trusting only `root`.
fn https(name: &str, vip: &str, root: &Path) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "5", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{name}:443:{vip}")])
        .arg(format!("https://{name}/"));
    cmd
}

/// The serial of the certificate `vip` serves for `name`.
fn served_serial(name: &str, vip: &str) -> String {
    let out = run(Command::new("sh").args([
        "-c",
        "openssl s_client -connect \"$1:443\" -servername \"$2\" </dev/null 2>/dev/null | openssl x509 -noout -serial",
        "sh",
        vip,
        name,
    ]));
    out.trim().to_string()
}

/// The serial of the first certificate of the PEM at `path`.
fn file_serial(path: &Path) -> String {
    run(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(path))
    .trim()
    .to_string()
}

/// Asks `https://NAME/` through the VIP over HTTPS with curl, one request after the other,
/// until stopped: what failed, and how many were asked.
struct HttpsClient {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<String>, usize)>,
}

impl HttpsClient {
    fn start(name: &str, vip: &str, root: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, name, vip, root) = (
                stop.clone(),
                name.to_string(),
                vip.to_string(),
                root.to_path_buf(),
            );
            std::thread::spawn(move || {
                let (mut failed, mut asked) = (Vec::new(), 0);
                while !stop.load(Ordering::Relaxed) {
                    let out = https(&name, &vip, &root).output().expect("curl");
                    asked += 1;
                    if !out.status.success() {
                        failed.push(String::from_utf8_lossy(&out.stderr).into_owned());
                    }
                }
                (failed, asked)
            })
        };
        HttpsClient { stop, thread }
    }

    fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client")
    }
}

/// A PEM (chain and key, as weft keeps one) for `names`, self-signed, which began 20 days ago
/// and ends in 5: less than a third of its lifetime is left.
fn due_certificate(names: &[&str]) -> String {
    let day = |offset: &str| -> (i32, u8, u8) {
        let out = run(Command::new("date").args(["-u", "-d", offset, "+%Y %m %d"]));
        let parts: Vec<&str> = out.split_whitespace().collect();
        (
            parts[0].parse().expect("year"),
            parts[1].parse().expect("month"),
            parts[2].parse().expect("day"),
        )
    };
    let (start, end) = (day("-20 days"), day("+5 days"));
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params.not_before = rcgen::date_time_ymd(start.0, start.1, start.2);
    params.not_after = rcgen::date_time_ymd(end.0, end.1, end.2);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    format!("{}{}", cert.pem(), key.serialize_pem())
}

#[test]
fn acme_certificates_from_pebble_are_served_at_the_vip_renewed_without_a_failed_request_and_kept_when_a_domain_fails(
) {
    let pebble = Pebble::start();
    let test = ha_example(2, 1);
    let _cleanup = Destroy {
        test: &test,
        env: "dev",
    };
    // The env's VIP, reserved before any machine exists (env_up takes the same one), so the
    // names point at it in Pebble's DNS before the first deploy asks for their certificate.
    test.write(
        "deploy/vip.rhai",
        "/// Says the env's virtual IP.\nfn show_vip() {\n    log(`vip is ${virtual_ip(\"\").address}`);\n}\n",
    );
    let shown = test.run(&["run", "show_vip", "-e", "dev"]);
    shown.status(0);
    let vip = shown
        .stdout
        .split("vip is ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("a VIP in {}", shown.stdout))
        .to_string();
    pebble.add_a("site.test", &vip);
    pebble.add_a("www.site.test", &vip);

    // Two settings switch it to ACME; the directory and CA point it at Pebble. They are there
    // from the start: the first env_up, on fresh machines, gets the certificate.
    std::fs::copy(pebble.ca(), test.path().join("pebble-ca.pem")).expect("ca");
    let acme = format!(
        "lb_role = \"lb\"\ndomains = [\"site.test\", \"www.site.test\"]\nacme_email = \"ops@site.test\"\n\
         acme_directory = \"{}\"\nacme_ca = \"pebble-ca.pem\"",
        pebble.directory
    );
    let config = test.read("weft.toml").replace("lb_role = \"lb\"", &acme);
    test.write("weft.toml", &config);

    // --check says a certificate would be requested, and asks Pebble for nothing: no account.
    test.run(&["run", "hello_certs", "-e", "dev", "--check"])
        .status(0)
        .stdout_has("would request a certificate for site.test, www.site.test from ACME server https://127.0.0.1:")
        .stdout_has("(no certificate yet)");
    assert!(!test.path().join(".weft/secrets/dev/acme").exists());

    let issued = test.run(&["run", "env_up", "-e", "dev", "--diff"]);
    issued
        .status(0)
        .stdout_has("hello: requesting a certificate for site.test, www.site.test from ACME server https://127.0.0.1:")
        .stdout_has("(no certificate yet)")
        .stdout_has("hello: new certificate for site.test, www.site.test");
    let vip_port = site_address(&issued.stdout);
    assert_eq!(vip_port, format!("{vip}:80"));
    let pem = test.path().join(".weft/secrets/dev/hello-acme.pem");
    let key = key_lines(&test, ".weft/secrets/dev/hello-acme.pem");
    lacks_key(&issued.stdout, &key, "env_up --diff");
    lacks_key(&issued.stderr, &key, "env_up --diff (stderr)");
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("file").permissions().mode() & 0o777
    };
    assert_eq!(mode(&pem), 0o600);
    let accounts: Vec<PathBuf> = std::fs::read_dir(test.path().join(".weft/secrets/dev/acme"))
        .expect("account folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(mode(&accounts[0]), 0o600);
    let account = std::fs::read_to_string(&accounts[0]).expect("account");
    let account_key = serde_json::from_str::<serde_json::Value>(&account).expect("json")
        ["key_pkcs8"]
        .as_str()
        .expect("key")
        .to_string();
    assert!(!issued.stdout.contains(&account_key) && !issued.stderr.contains(&account_key));

    // Both names answer through the VIP with Pebble's certificate, trusted through its root.
    let root = pebble.issuing_root();
    for name in ["site.test", "www.site.test"] {
        let body = run(&mut https(name, &vip, &root));
        assert_eq!(body.trim(), "hello 1.0 from app-0");
    }
    let first = file_serial(&pem);
    assert_eq!(served_serial("site.test", &vip), first);
    // Both lbs hold it (the VIP may move to either).
    for lb in ["lb-0", "lb-1"] {
        test.ssh(
            "dev",
            lb,
            &["openssl x509 -noout -serial -in /etc/haproxy/certs/hello.pem"],
        )
        .status(0)
        .stdout_has(&first);
    }

    // A fresh certificate has its lifetime ahead: the daily run leaves it.
    test.run(&["run", "hello_certs", "-e", "dev"])
        .status(0)
        .stdout_has("nothing to renew before");
    assert_eq!(file_serial(&pem), first);

    // One with less than a third of its lifetime left (made here for the same names, put in
    // the controller's file): the daily run renews it, and the lbs serve the new one.
    std::fs::write(&pem, due_certificate(&["site.test", "www.site.test"])).expect("due one");
    let due = file_serial(&pem);
    test.run(&["run", "hello_certs", "-e", "dev"])
        .status(0)
        .stdout_has("days left, less than a third of its lifetime")
        .stdout_has("hello: new certificate for site.test, www.site.test");
    let first = file_serial(&pem);
    assert_ne!(first, due);
    wait_for(
        "the renewed certificate at the VIP",
        Duration::from_secs(10),
        || served_serial("site.test", &vip) == first,
    );

    // A renewal under clients asking over HTTPS and HTTP: no request fails.
    let secure = HttpsClient::start("site.test", &vip, &root);
    let plain = Client::start(&vip_port);
    plain.wait_for_answers(10);
    let renewed = test.run(&["run", "hello_renew", "-e", "dev", "--json", "--diff"]);
    renewed.status(0).stdout_has("(forced)");
    let second = file_serial(&pem);
    assert_ne!(second, first);
    let key = key_lines(&test, ".weft/secrets/dev/hello-acme.pem");
    lacks_key(&renewed.stdout, &key, "hello_renew --json --diff");
    lacks_key(&renewed.stderr, &key, "hello_renew --json --diff (stderr)");
    wait_for(
        "the new certificate at the VIP",
        Duration::from_secs(10),
        || served_serial("site.test", &vip) == second,
    );
    plain.wait_for_answers(10);
    let started = Instant::now();
    let seen = plain.finish(Duration::from_millis(500));
    let (failed, asked) = secure.finish();
    eprintln!(
        "renewal: {} of {asked} HTTPS and {} of {} HTTP requests failed ({:?} after)",
        failed.len(),
        seen.failed().len(),
        seen.requests.len(),
        started.elapsed()
    );
    assert!(failed.is_empty(), "HTTPS: {failed:?}");
    assert!(seen.failed().is_empty(), "HTTP: {:?}", seen.failed());
    assert!(asked > 5, "{asked}");

    // A name that resolves nowhere fails the deploy naming it; the lbs keep serving the
    // certificate they had, and the controller keeps its file.
    let config = test.read("weft.toml").replace(
        "domains = [\"site.test\", \"www.site.test\"]",
        "domains = [\"site.test\", \"nowhere.test\"]",
    );
    test.write("weft.toml", &config);
    let before = std::fs::read(&pem).expect("pem");
    test.run(&["run", "hello_deploy", "-e", "dev", "--check"])
        .status(0)
        .stdout_has("would request a certificate for site.test, nowhere.test")
        .stdout_has("domains names [\"nowhere.test\", \"site.test\"]");
    let bad = test.run(&["run", "hello_deploy", "-e", "dev"]);
    bad.status(1)
        .stdout_has("could not validate `nowhere.test`")
        .stdout_has("the load balancers keep the certificate they serve");
    assert_eq!(std::fs::read(&pem).expect("pem"), before);
    assert_eq!(served_serial("site.test", &vip), second);
    let body = run(&mut https("site.test", &vip, &root));
    assert_eq!(body.trim(), "hello 1.0 from app-0");

    // Names that validate again: the deploy gets their certificate and the lbs serve it.
    let config = test.read("weft.toml").replace(
        "domains = [\"site.test\", \"nowhere.test\"]",
        "domains = [\"site.test\"]",
    );
    test.write("weft.toml", &config);
    test.run(&["run", "hello_deploy", "-e", "dev"])
        .status(0)
        .stdout_has("hello: new certificate for site.test");
    let third = file_serial(&pem);
    assert_ne!(third, second);
    assert_eq!(served_serial("site.test", &vip), third);

    // The backup lb stops. A renewal puts the challenges and the certificate on the lb that
    // answers (the VIP holder) and names the one that did not get it; once that one runs
    // again, the daily run gives it the certificate in use.
    let (_, backup) = pair(&holder(&test, "dev"));
    test.run(&["cloud", "stop", &backup, "-e", "dev"]).status(0);
    test.run(&["run", "hello_renew", "-e", "dev"])
        .status(0)
        .stdout_has("hello: new certificate for site.test")
        .stdout_has(&format!(
            "hello: [\"{backup}\"] did not get the certificate (stopped, or not answering over SSH): \
             the next hello_deploy or hello_certs gives it to them"
        ));
    let fourth = file_serial(&pem);
    assert_ne!(fourth, third);
    assert_eq!(served_serial("site.test", &vip), fourth);
    test.run(&["cloud", "start", &backup, "-e", "dev"])
        .status(0);
    wait_for("the backup lb over SSH", Duration::from_secs(60), || {
        test.ssh("dev", &backup, &["true"]).code == 0
    });
    let served_by_backup = || {
        test.ssh(
            "dev",
            &backup,
            &["openssl x509 -noout -serial -in /etc/haproxy/certs/hello.pem"],
        )
        .stdout
    };
    assert!(
        served_by_backup().contains(&third),
        "{}",
        served_by_backup()
    );
    test.run(&["run", "hello_certs", "-e", "dev"])
        .status(0)
        .stdout_has("nothing to renew before")
        .stdout_lacks("did not get the certificate");
    assert!(
        served_by_backup().contains(&fourth),
        "{}",
        served_by_backup()
    );
    let answer = test.ssh(
        "dev",
        &backup,
        &["sh -c 'echo | openssl s_client -connect 127.0.0.1:443 -servername site.test 2>/dev/null | openssl x509 -noout -serial'"],
    );
    answer.status(0).stdout_has(&fourth);

    // Deployed without domains, the lbs have no rule for the challenges; hello_renew, once
    // domains are back, sets haproxy up first, gets the certificate and serves it.
    let with_domains = test.read("weft.toml");
    test.write(
        "weft.toml",
        &with_domains.replace("domains = [\"site.test\"]\n", ""),
    );
    test.run(&["run", "hello_deploy", "-e", "dev"]).status(0);
    let (held, _) = pair(&holder(&test, "dev"));
    test.ssh(
        "dev",
        &held,
        &["grep -c acme-challenge /etc/haproxy/haproxy.cfg || true"],
    )
    .status(0)
    .stdout_has("0");
    test.write("weft.toml", &with_domains);
    test.run(&["run", "hello_renew", "-e", "dev"])
        .status(0)
        .stdout_has("hello: new certificate for site.test");
    let fifth = file_serial(&pem);
    assert_ne!(fifth, fourth);
    assert_eq!(served_serial("site.test", &vip), fifth);
}

/// `hello_deploy` stops with exit 2 and `message`, pointing at where `token` is written in
/// weft.toml (`weft.toml:LINE:COLUMN` and the snippet), having made no machine.
#[track_caller]
fn refused_at(test: &crate::harness::Test, message: &str, token: &str) {
    let _cleanup = Destroy { test, env: "dev" };
    let config = test.read("weft.toml");
    let at = config
        .find(token)
        .unwrap_or_else(|| panic!("{token} in {config}"));
    let line = config[..at].matches('\n').count() + 1;
    let column = at - config[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    let out = test.run(&["run", "hello_deploy", "-e", "dev"]);
    out.status(2)
        .stderr_has(message)
        .stderr_has(&format!("weft.toml:{line}:{column}"))
        .stderr_has(token)
        .stdout_lacks("hello_lock")
        .stdout_lacks("building");
    let list = test.run(&["cloud", "list", "-e", "dev", "--json"]);
    assert_eq!(list.stdout.trim(), "[]", "{}", list.stdout);
}

#[test]
fn acme_settings_that_cannot_work_are_refused_where_they_are_written_before_any_host() {
    let with = |extra: &str| settings_project(1, &format!("domains = [\"site.test\"]\n{extra}"));
    refused_at(
        &with("lb_port = 8080"),
        "ACME validates domains over HTTP on port 80, and lb_port is 8080",
        "lb_port = 8080",
    );
    refused_at(
        &settings_project(1, "domains = [\"site.test\", \"*.site.test\"]"),
        "domain `*.site.test` is a wildcard",
        "\"*.site.test\"",
    );
    refused_at(
        &settings_project(1, "domains = [\"site.test:8443\"]"),
        "domain `site.test:8443` has a port",
        "\"site.test:8443\"",
    );
    // Names the certificate would write otherwise: renewal never found them in it, and
    // ordered again on every run.
    refused_at(
        &settings_project(1, "domains = [\"site.test\", \"Www.site.test\"]"),
        "domain `Www.site.test` has capital letters: write it in lowercase",
        "\"Www.site.test\"",
    );
    refused_at(
        &settings_project(1, "domains = [\"site.test.\"]"),
        "domain `site.test.` ends with a dot",
        "\"site.test.\"",
    );
    refused_at(
        &with("tls_cert = \"certs/site.pem\""),
        "sets both tls_cert and domains",
        "tls_cert",
    );
    refused_at(
        &with("acme_directory = \"http://acme.test/dir\""),
        "acme_directory `http://acme.test/dir` is not \"production\", \"staging\" or an https:// URL",
        "\"http://acme.test/dir\"",
    );
    refused_at(
        &with("acme_ca = \"missing.pem\""),
        "acme_ca `missing.pem` is no file of the project",
        "\"missing.pem\"",
    );
    refused_at(
        &with("acme_email = \"ops at site.test\""),
        "acme_email `ops at site.test` is not an email address",
        "\"ops at site.test\"",
    );
    // Settings that can work load.
    let fine = with("acme_email = \"ops@site.test\"\nacme_directory = \"staging\"");
    fine.run(&["list"]).status(0).stdout_has("hello_certs");
}
