//! `weft secrets` and `{ secret = "NAME" }` (issue 37): an env's `secrets/<env>.age`, edited
//! with no plaintext left behind (Ctrl-C included), refused to those who are not recipients,
//! rekeyed to new ones, and masked in a run's output. The secret stores: `{ command = [..] }`
//! with fake password managers (run only by a step that uses it, failing, hanging, absent,
//! over SSH on standard input) and `{ aws_secret = .. }` on moto; a secret of each source
//! masked under `-vv` and `--json`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::Test;

/// Makes the identity `name` in the test's folder; returns its path and public key.
fn keygen(test: &Test, name: &str) -> (String, String) {
    let path = test
        .home()
        .join(format!("{name}.key"))
        .display()
        .to_string();
    let out = test.run_with(&["secrets", "keygen"], &[("WEFT_AGE_IDENTITY", &path)]);
    out.status(0);
    let public = out.stdout.trim().to_string();
    assert!(public.starts_with("age1"), "{out:?}");
    (path, public)
}

/// `weft secrets set NAME -e ENV` with `value` on standard input, as `identity`.
fn set(test: &Test, identity: &str, env: &str, name: &str, value: &str) {
    let mut child = test
        .command(&["secrets", "set", name, "-e", env])
        .env("WEFT_AGE_IDENTITY", identity)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{value}\n").as_bytes())
        .expect("value written");
    let out = child.wait_with_output().expect("weft ends");
    assert!(out.status.success(), "{out:?}");
}

fn config(envs: &[(&str, &[&str])]) -> String {
    let mut text = String::from("[project]\nname = \"t\"\n");
    for (env, keys) in envs {
        let keys: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
        text.push_str(&format!(
            "[env.{env}]\nconnector = \"local\"\nsecrets_recipients = [{}]\n",
            keys.join(", ")
        ));
    }
    text
}

/// An `$EDITOR` script in the test's home folder.
fn editor(test: &Test, name: &str, body: &str) -> String {
    let path = test.home().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("editor");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path.display().to_string()
}

fn wait_for(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn edit_round_trips_and_leaves_no_plaintext_also_after_sigint() {
    let test = Test::new();
    let (alice, alice_pub) = keygen(&test, "alice");
    test.write("weft.toml", &config(&[("dev", &[&alice_pub])]));
    let seen = test.home().join("seen");
    let ed = editor(
        &test,
        "ed.sh",
        &format!(
            "printf 'DB_PASSWORD=pw-from-editor-4242\\n' >> \"$1\"\n\
             stat -c '%a' \"$1\" \"$(dirname \"$1\")\" > {home}/modes\n\
             echo \"$1\" > {seen}",
            home = test.home().display(),
            seen = seen.display()
        ),
    );
    let env = [
        ("WEFT_AGE_IDENTITY", alice.as_str()),
        ("EDITOR", ed.as_str()),
    ];
    test.run_with(&["secrets", "edit", "-e", "dev"], &env)
        .status(0)
        .stderr_has("encrypted `secrets/dev.age`");
    let plain = PathBuf::from(wait_for(&seen).trim());
    if Path::new("/dev/shm").is_dir() {
        assert!(plain.starts_with("/dev/shm"), "{}", plain.display());
    }
    assert!(!plain.exists(), "{} left behind", plain.display());
    assert!(!plain.parent().expect("dir").exists(), "folder left behind");
    assert_eq!(
        std::fs::read_to_string(test.home().join("modes")).expect("modes"),
        "600\n700\n"
    );
    let sealed = std::fs::read(test.path().join("secrets/dev.age")).expect("age file");
    assert!(!String::from_utf8_lossy(&sealed).contains("pw-from-editor"));
    test.run_with(&["secrets", "get", "DB_PASSWORD", "-e", "dev"], &env)
        .status(0)
        .stdout_has("pw-from-editor-4242\n");
    test.run_with(&["secrets", "ls", "-e", "dev"], &env)
        .status(0)
        .stdout_has("DB_PASSWORD\n")
        .stdout_lacks("4242");

    // Text that is not `NAME=value` lines is refused: the edit is discarded, the file kept.
    std::fs::remove_file(&seen).expect("rm");
    let bad = editor(
        &test,
        "bad.sh",
        &format!(
            "echo 'no equals sign' >> \"$1\"\necho \"$1\" > {}",
            seen.display()
        ),
    );
    test.run_with(
        &["secrets", "edit", "-e", "dev"],
        &[
            ("WEFT_AGE_IDENTITY", alice.as_str()),
            ("EDITOR", bad.as_str()),
        ],
    )
    .status(2)
    .stderr_has("not `NAME=value`")
    .stderr_has("the edit was discarded");
    assert!(!PathBuf::from(wait_for(&seen).trim()).exists());
    assert_eq!(
        std::fs::read(test.path().join("secrets/dev.age")).expect("age file"),
        sealed
    );

    // Ctrl-C while the editor runs: the plaintext goes, the file stays as it was.
    std::fs::remove_file(&seen).expect("rm");
    let sleeper = editor(
        &test,
        "sleeper.sh",
        &format!(
            "printf 'DB_PASSWORD=never-saved\\n' >> \"$1\"\necho \"$1\" > {}\nexec sleep 30",
            seen.display()
        ),
    );
    let child = test
        .command(&["secrets", "edit", "-e", "dev"])
        .env("WEFT_AGE_IDENTITY", &alice)
        .env("EDITOR", &sleeper)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft runs");
    let plain = PathBuf::from(wait_for(&seen).trim());
    assert!(plain.exists());
    let started = Instant::now();
    let pid = i32::try_from(child.id()).expect("pid");
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("weft ends");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the editor held weft"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: the plaintext was removed"),
        "{stderr}"
    );
    assert!(!plain.exists(), "{} left behind", plain.display());
    assert!(!plain.parent().expect("dir").exists(), "folder left behind");
    assert_eq!(
        std::fs::read(test.path().join("secrets/dev.age")).expect("age file"),
        sealed
    );
}

#[test]
fn a_non_recipient_is_refused_for_prod_and_works_for_dev_until_rekeyed_in() {
    let test = Test::new();
    let (alice, alice_pub) = keygen(&test, "alice");
    let (bob, bob_pub) = keygen(&test, "bob");
    test.write(
        "weft.toml",
        &config(&[("dev", &[&alice_pub, &bob_pub]), ("prod", &[&alice_pub])]),
    );
    set(&test, &alice, "dev", "API_KEY", "dev-key-1111");
    set(&test, &alice, "prod", "API_KEY", "prod-key-2222");
    let as_bob = [("WEFT_AGE_IDENTITY", bob.as_str())];
    test.run_with(&["secrets", "get", "API_KEY", "-e", "dev"], &as_bob)
        .status(0)
        .stdout_has("dev-key-1111");
    test.run_with(&["secrets", "get", "API_KEY", "-e", "prod"], &as_bob)
        .status(2)
        .stderr_has("cannot decrypt `")
        .stderr_has("prod.age")
        .stderr_lacks("prod-key-2222");
    let out = test.run_with(&["secrets", "ls", "-e", "prod"], &as_bob);
    out.status(2);
    assert!(
        out.stderr.contains("is not one of its recipients") && out.stderr.contains(&bob_pub),
        "{out:?}"
    );

    // Alice adds Bob to prod and rekeys: Bob reads it, and the value is the same.
    test.write(
        "weft.toml",
        &config(&[
            ("dev", &[&alice_pub, &bob_pub]),
            ("prod", &[&alice_pub, &bob_pub]),
        ]),
    );
    test.run_with(
        &["secrets", "rekey", "-e", "prod"],
        &[("WEFT_AGE_IDENTITY", alice.as_str())],
    )
    .status(0)
    .stderr_has("re-encrypted `secrets/prod.age` to 2 recipient(s)");
    test.run_with(&["secrets", "get", "API_KEY", "-e", "prod"], &as_bob)
        .status(0)
        .stdout_has("prod-key-2222");
}

#[test]
fn a_secret_of_the_file_reaches_a_goal_and_is_masked_in_verbose_and_json_output() {
    let test = Test::new();
    let (alice, alice_pub) = keygen(&test, "alice");
    let (bob, bob_pub) = keygen(&test, "bob");
    let mut text = config(&[("local", &[&alice_pub]), ("prod", &[&bob_pub])]);
    text.push_str("[vars]\ndb = { secret = \"DB_PASSWORD\" }\n");
    test.write("weft.toml", &text);
    test.write(
        "deploy/s.rhai",
        r#"
/// Uses the env's secret.
fn s_use(host) {
    let db = env().vars.db;
    host.write_file("seen.txt", db);
    log(`db ${db}`);
    host.run(`echo ${db}`);
}

/// Uses no secret.
fn s_none(host) { log("fine"); }
"#,
    );
    set(&test, &alice, "local", "DB_PASSWORD", "vault-secret-8080");
    let as_alice = [("WEFT_AGE_IDENTITY", alice.as_str())];
    for args in [
        &["run", "s_use", "-vv"][..],
        &["run", "s_use", "--json"][..],
    ] {
        let out = test.run_with(args, &as_alice);
        out.status(0)
            .stdout_lacks("vault-secret-8080")
            .stderr_lacks("vault-secret-8080");
        assert!(out.stdout.contains("********"), "{out:?}");
    }
    assert_eq!(test.read("seen.txt"), "vault-secret-8080");

    // Bob is no recipient of `local`: the goal that uses the secret fails, saying why; one
    // that does not runs.
    let as_bob = [("WEFT_AGE_IDENTITY", bob.as_str())];
    test.run_with(&["run", "s_use"], &as_bob)
        .status(1)
        .stderr_has("is not one of its recipients");
    test.run_with(&["run", "s_none"], &as_bob).status(0);
}

#[test]
fn an_ssh_key_is_a_recipient_and_decrypts_from_the_home_folder() {
    let test = Test::new();
    let (alice, alice_pub) = keygen(&test, "alice");
    let ssh = test.home().join(".ssh");
    std::fs::create_dir_all(&ssh).expect(".ssh");
    let key = ssh.join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "carol@laptop", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let carol_pub = std::fs::read_to_string(ssh.join("id_ed25519.pub")).expect("pub");
    let carol_pub = carol_pub.trim();
    test.write(
        "weft.toml",
        &config(&[("dev", &[&alice_pub, carol_pub]), ("prod", &[&alice_pub])]),
    );
    set(&test, &alice, "dev", "TOKEN", "ssh-readable-5150");
    set(&test, &alice, "prod", "TOKEN", "prod-only-6160");
    // Carol has no age identity: her SSH key reads dev, and is named when prod refuses her.
    test.run(&["secrets", "get", "TOKEN", "-e", "dev"])
        .status(0)
        .stdout_has("ssh-readable-5150\n");
    let out = test.run(&["secrets", "get", "TOKEN", "-e", "prod"]);
    out.status(2).stderr_lacks("prod-only-6160");
    let bare: Vec<&str> = carol_pub.split_whitespace().take(2).collect();
    assert!(
        out.stderr.contains("is not one of its recipients")
            && out.stderr.contains("id_ed25519")
            && out.stderr.contains(&bare.join(" ")),
        "{out:?}"
    );
}

/// An executable script `name` in the test's home folder (a fake password manager).
fn script(test: &Test, name: &str, body: &str) -> String {
    let path = test.home().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    let status = std::process::Command::new("chmod")
        .args(["755", &path.display().to_string()])
        .status()
        .expect("chmod");
    assert!(status.success());
    path.display().to_string()
}

#[test]
fn a_command_reference_runs_a_password_manager_only_when_a_step_uses_it() {
    let test = Test::new();
    let runs = test.home().join("pm-runs");
    // Records each start, its argument and its folder; prints the value with a newline.
    let ok = script(
        &test,
        "pm-ok",
        &format!(
            "echo \"$1 $(pwd)\" >> {}\nprintf 'pm-secret-5150\\n'",
            runs.display()
        ),
    );
    let locked = script(
        &test,
        "pm-locked",
        "echo 'vault is locked: run op signin' >&2; exit 1",
    );
    let slow = script(&test, "pm-slow", "exec sleep 60");
    test.write(
        "weft.toml",
        &format!(
            "[project]\nname = \"t\"\n\
             [env.dev]\nprovider = \"local\"\n\
             [vars]\n\
             pw = {{ command = [\"{ok}\", \"op://vault/db/password\"] }}\n\
             locked = {{ command = [\"{locked}\"] }}\n\
             slow = {{ command = [\"{slow}\"], timeout = 1 }}\n"
        ),
    );
    test.write(
        "deploy/s.rhai",
        r#"
/// Uses the password twice.
fn s_use(host) {
    let v = env().vars;
    host.write_file("seen.txt", v.pw);
    host.run(`echo ${v.pw}`);
    log(`pw ${v.pw}`);
}

/// Uses no secret.
fn s_none(host) { log("fine"); }

/// Uses var `name`.
fn s_var(host, name) { host.run(`echo ${env().vars[name]}`); }

/// Computes with the password: `secret` reads it first.
fn s_len(host) { log(`length ${secret(env().vars.pw).len()}`); }
"#,
    );

    // Runs that use none of them start no password manager, a controller goal of a
    // provider's env included.
    test.run(&["run", "s_none"]).status(0).stdout_has("fine");
    test.run(&["run", "env_status", "-e", "dev"]).status(0);
    test.run(&["run", "env_down", "-e", "dev", "--yes"])
        .status(0);
    test.run(&["cloud", "list", "-e", "dev"]).status(0);
    assert!(
        !runs.exists(),
        "a password manager ran for a run that needs none"
    );

    // One that uses it runs it once, with its argument, in the project folder, and the
    // value reaches the host masked.
    let out = test.run(&["run", "s_use"]);
    out.status(0)
        .stdout_has("pw ********")
        .stdout_lacks("pm-secret")
        .stderr_lacks("pm-secret");
    assert_eq!(test.read("seen.txt"), "pm-secret-5150");
    let project = test.path().canonicalize().expect("project");
    assert_eq!(
        std::fs::read_to_string(&runs).expect("it ran"),
        format!("op://vault/db/password {}\n", project.display())
    );
    test.run(&["run", "s_len"])
        .status(0)
        .stdout_has("length 14");

    // A failing one fails the step that uses it, naming the program, with its error output,
    // pointing at weft.toml.
    test.run(&["run", "s_var", "locked"])
        .status(1)
        .stderr_has(&format!(
            "`{locked}` failed (exit status: 1): vault is locked: run op signin"
        ))
        .stderr_has("weft.toml:7:10)")
        .stderr_has("run it yourself to see why");
    // One that hangs is stopped at its timeout.
    let started = Instant::now();
    test.run(&["run", "s_var", "slow"])
        .status(1)
        .stderr_has(&format!(
            "`{slow}` did not finish within 1 s and was stopped"
        ))
        .stderr_has("`timeout = SECONDS`");
    assert!(started.elapsed() < Duration::from_secs(30));
    // One that is not there says so.
    test.write(
        "weft.toml",
        "[project]\nname = \"t\"\n[vars]\ngone = { command = [\"weft-no-such-manager\", \"read\"] }\n",
    );
    test.run(&["run", "s_var", "gone"])
        .status(1)
        .stderr_has("cannot run `weft-no-such-manager`")
        .stderr_has("install `weft-no-such-manager`");
}

#[test]
fn a_command_written_as_a_shell_string_is_refused_with_its_array_form() {
    let test = Test::new();
    let runs = test.home().join("pm-runs");
    let ok = script(&test, "pm", &format!("touch {}; echo x", runs.display()));
    test.write(
        "weft.toml",
        &format!("[project]\nname = \"t\"\n[vars]\nkey = {{ command = \"{ok} show prod/key\" }}\n"),
    );
    test.write(
        "deploy/s.rhai",
        "/// Uses nothing.\nfn s_none(host) { log(\"fine\"); }\n",
    );
    test.run(&["run", "s_none"])
        .status(2)
        .stderr_has("run without a shell")
        .stderr_has(&format!("command = [\"{ok}\", \"show\", \"prod/key\"]"))
        .stderr_has("weft.toml:4:7");
    assert!(!runs.exists());
}

/// Makes secrets `(name, value)` in moto's Secrets Manager, in `region`.
#[cfg(all(feature = "ec2", feature = "aws-secrets"))]
fn aws_secrets(moto: &crate::cloud::Moto, region: &str, secrets: &[(&str, &str)]) {
    let code = format!(
        "import boto3, sys\n\
         c = boto3.client('secretsmanager', endpoint_url='http://127.0.0.1:{}', \
         region_name='{region}', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         for name, value in zip(sys.argv[1::2], sys.argv[2::2]):\n    \
         c.create_secret(Name=name, SecretString=value)\n",
        moto.port
    );
    let args: Vec<&str> = secrets.iter().flat_map(|(n, v)| [*n, *v]).collect();
    let out = std::process::Command::new(crate::cloud::test_python())
        .args(["-c", &code])
        .args(&args)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{out:?}");
}

#[cfg(all(feature = "ec2", feature = "aws-secrets"))]
#[test]
fn aws_secret_reads_secrets_manager_on_moto_in_the_envs_region() {
    let moto = crate::cloud::Moto::start();
    aws_secrets(
        &moto,
        "eu-west-1",
        &[
            (
                "app/db",
                r#"{"user": "app", "password": "aws-secret-4242"}"#,
            ),
            ("app/token", "aws-token-9999"),
        ],
    );
    // The environment's region is another: the env's wins, as for ec2.
    let test = Test::with_config(
        "[project]\nname = \"t\"\n\
         [env.dev]\nconnector = \"local\"\nregion = \"eu-west-1\"\n\
         [env.dev.vars]\n\
         db = { aws_secret = \"app/db\", key = \"password\" }\n\
         token = { aws_secret = \"app/token\" }\n\
         nokey = { aws_secret = \"app/db\", key = \"pass\" }\n\
         notjson = { aws_secret = \"app/token\", key = \"password\" }\n\
         gone = { aws_secret = \"app/gone\" }\n\
         slow = { aws_secret = \"app/token\", timeout = 2 }\n",
    )
    .with_env(moto.env());
    test.write(
        "deploy/s.rhai",
        r#"
/// Uses both secrets.
fn s_use(host) {
    let v = env().vars;
    host.write_file("seen.txt", `${v.db} ${v.token}`);
    host.run(`echo ${v.db} ${v.token}`);
}

/// Uses var `name`.
fn s_var(host, name) { host.run(`echo ${env().vars[name]}`); }
"#,
    );
    test.run(&["run", "s_use", "-e", "dev", "-vv"])
        .status(0)
        .stdout_lacks("aws-secret-4242")
        .stdout_lacks("aws-token-9999")
        .stderr_lacks("aws-secret-4242")
        .stderr_lacks("aws-token-9999");
    assert_eq!(test.read("seen.txt"), "aws-secret-4242 aws-token-9999");

    test.run(&["run", "s_var", "nokey", "-e", "dev"])
        .status(1)
        .stderr_has("AWS secret `app/db` has no key `pass`")
        .stderr_has("its keys are `password`, `user`")
        .stderr_has("weft.toml:9:9)")
        .stderr_lacks("aws-secret-4242");
    test.run(&["run", "s_var", "notjson", "-e", "dev"])
        .status(1)
        .stderr_has("AWS secret `app/token` is not a JSON object, so it has no key `password`")
        .stderr_lacks("aws-token-9999");
    test.run(&["run", "s_var", "gone", "-e", "dev"])
        .status(1)
        .stderr_has("AWS Secrets Manager has no secret `app/gone` (region eu-west-1)")
        .stderr_has("weft.toml:11:8)");

    // An endpoint that does not answer is an error within the deadline, naming it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let down = format!("http://127.0.0.1:{closed}");
    let started = Instant::now();
    test.run_with(
        &["run", "s_var", "token", "-e", "dev"],
        &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", &down)],
    )
    .status(1)
    .stderr_has(&format!("cannot reach AWS Secrets Manager at {down}"))
    .stderr_has("weft.toml:8:9)");
    assert!(started.elapsed() < Duration::from_secs(60));
    // One that takes the connection and never answers is given up at the reference's timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let silent = format!("http://{}", listener.local_addr().expect("addr"));
    let started = Instant::now();
    test.run_with(
        &["run", "s_var", "slow", "-e", "dev"],
        &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", &silent)],
    )
    .status(1)
    .stderr_has("AWS Secrets Manager did not answer for `app/token` within 2 s")
    .stderr_has("weft.toml:12:8)");
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(listener);
}

#[cfg(all(feature = "ec2", feature = "aws-secrets"))]
#[test]
fn aws_secret_refused_by_iam_says_so_and_what_to_grant() {
    // moto checks IAM after its first three requests: a user with no policy, its keys and
    // a secret it may not read.
    let moto = crate::cloud::Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let code = format!(
        "import boto3\n\
         kw = dict(endpoint_url='http://127.0.0.1:{}', region_name='us-east-1', \
         aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         iam = boto3.client('iam', **kw)\n\
         iam.create_user(UserName='bob')\n\
         k = iam.create_access_key(UserName='bob')['AccessKey']\n\
         boto3.client('secretsmanager', **kw).create_secret(Name='app/db', SecretString='denied-7777')\n\
         print(k['AccessKeyId'], k['SecretAccessKey'])\n",
        moto.port
    );
    let out = std::process::Command::new(crate::cloud::test_python())
        .args(["-c", &code])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{out:?}");
    let keys = String::from_utf8(out.stdout).expect("text");
    let (id, key) = keys.trim().split_once(' ').expect("two keys");
    let test =
        Test::with_config("[project]\nname = \"t\"\n[vars]\ndb = { aws_secret = \"app/db\" }\n")
            .with_env(moto.env());
    test.write(
        "deploy/s.rhai",
        "/// Uses the secret.\nfn s_use(host) { host.run(`echo ${env().vars.db}`); }\n",
    );
    test.run_with(
        &["run", "s_use"],
        &[("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", key)],
    )
    .status(1)
    .stderr_has("AWS refused to read secret `app/db` (region us-east-1)")
    .stderr_has("is not authorized to perform: secretsmanager:GetSecretValue")
    .stderr_has("give the env's credentials `secretsmanager:GetSecretValue` on it")
    .stderr_has("weft.toml:4:6)")
    .stderr_lacks("denied-7777");
}

#[cfg(all(feature = "ec2", feature = "aws-secrets"))]
#[test]
fn a_secret_from_each_source_is_masked_in_verbose_and_json_output() {
    let moto = crate::cloud::Moto::start();
    aws_secrets(&moto, "us-east-1", &[("app/aws", "aws-value-5555")]);
    let test = Test::new().with_env(moto.env());
    let (alice, alice_pub) = keygen(&test, "alice");
    std::fs::write(test.home().join("f"), "file-value-2222\n").expect("file");
    let pm = script(&test, "pm", "printf 'cmd-value-3333\\n'");
    test.write(
        "weft.toml",
        &format!(
            "[project]\nname = \"t\"\n\
             [env.dev]\nconnector = \"local\"\nsecrets_recipients = [\"{alice_pub}\"]\n\
             [env.dev.vars]\n\
             e = {{ env = \"WEFT_TEST_E\" }}\n\
             f = {{ file = \"~/f\" }}\n\
             c = {{ command = [\"{pm}\"] }}\n\
             s = {{ secret = \"S\" }}\n\
             a = {{ aws_secret = \"app/aws\" }}\n"
        ),
    );
    set(&test, &alice, "dev", "S", "age-value-4444");
    test.write(
        "deploy/s.rhai",
        r#"
/// Uses a secret of each source: in a file, a command's output, a log line and an error.
fn s_use(host) {
    let v = env().vars;
    let all = `${v.e} ${v.f} ${v.c} ${v.s} ${v.a}`;
    host.write_file("seen.txt", all);
    host.run(`echo ${all}; echo ${all} >&2`);
    log(`values ${all}`);
    host.run(`echo ${all}; exit 3`);
}
"#,
    );
    let values = [
        "env-value-1111",
        "file-value-2222",
        "cmd-value-3333",
        "age-value-4444",
        "aws-value-5555",
    ];
    let env = [
        ("WEFT_TEST_E", values[0]),
        ("WEFT_AGE_IDENTITY", alice.as_str()),
    ];
    for args in [
        &["run", "s_use", "-e", "dev", "-vv"][..],
        &["run", "s_use", "-e", "dev", "--json"][..],
        &["run", "s_use", "-e", "dev", "-vv", "--json"][..],
    ] {
        let out = test.run_with(args, &env);
        out.status(1);
        for value in values {
            out.stdout_lacks(value).stderr_lacks(value);
        }
        assert!(out.stdout.contains("********"), "{out:?}");
    }
    assert_eq!(test.read("seen.txt"), values.join(" "));
}

#[test]
fn a_command_secret_reaches_an_ssh_host_on_standard_input_never_in_argv() {
    let fleet = crate::fleet::Fleet::start(1);
    let test = Test::new();
    let secret = format!("lazy-{}-tok", std::process::id());
    let pm = script(&test, "pm", &format!("printf '%s\\n' '{secret}'"));
    test.write(
        "weft.toml",
        &format!("[project]\nname = \"s\"\n[vars]\nt = {{ command = [\"{pm}\"] }}\n"),
    );
    test.write(
        "deploy/s.rhai",
        r#"
/// Sleeps with the secret in the command, then shows its length.
fn s_sleep(host) {
    let r = host.run(`sleep 3.04; printf '%s' "${env().vars.t}" | wc -c`);
    log(`out: ${r.stdout}`);
}
"#,
    );
    let (key, known) = (fleet.key(), fleet.known_hosts());
    let address = fleet.address(0, "root");
    let argv = [
        "run",
        "s_sleep",
        "-H",
        &address,
        "-i",
        &key,
        "--known-hosts",
        &known,
    ];
    let out = crate::ssh::watch_process_list(&test, &argv, &[], &secret, "sleep 3.04");
    out.status(0)
        .stdout_has(&format!("out: {}", secret.len()))
        .stdout_lacks(&secret);
}

#[test]
fn ctrl_c_stops_a_password_manager_that_is_being_read() {
    let test = Test::new();
    let started = test.home().join("pm-started");
    let slow = script(
        &test,
        "pm-slow",
        &format!("echo up > {}\nexec sleep 60", started.display()),
    );
    test.write(
        "weft.toml",
        &format!(
            "[project]\nname = \"t\"\n[vars]\nslow = {{ command = [\"{slow}\"], timeout = 20 }}\n"
        ),
    );
    test.write(
        "deploy/s.rhai",
        "/// Uses var `name`.\nfn s_var(host, name) { host.run(`echo ${env().vars[name]}`); }\n",
    );
    let child = test
        .command(&["run", "s_var", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft starts");
    while !started.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let at = Instant::now();
    // SAFETY: kill has no memory effects; the pid is our child's, not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("weft ends");
    let took = at.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        took < Duration::from_secs(5),
        "Ctrl-C took {took:?}: {stderr}"
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("did not finish within"), "{stderr}");
}
