//! The basic facts and the named ones, parsed from what the host prints.

use serde_json::json;

use super::refused;
use crate::exec::ops::facts;
use crate::exec::test_host::TestHost;
use crate::transport::fake::FakeTransport;

const BASIC: &str = "set -- $(uname -snrm)";

#[test]
fn basic_facts_are_parsed_with_numbers_as_numbers() {
    let printed = "os=Linux\nkernel=6.1.0-18-amd64\narch=x86_64\nhostname=web-1\n\
                   distro=debian\ndistro_version=12\ndistro_name=Debian GNU/Linux 12 (bookworm)\n\
                   init=systemd\ncpus=2\nmemory_mb=1987\nuser=root\nuid=0\naddress=10.0.0.5\n\
                   a line without a value\n";
    let host = TestHost::new(FakeTransport::new().on(BASIC, 0, printed));
    let facts = facts::basic(&host.session).expect("facts");
    assert_eq!(facts["distro_name"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(facts["cpus"], 2);
    assert_eq!(facts["memory_mb"], 1987);
    assert_eq!(facts["uid"], 0);
    assert_eq!(facts["address"], "10.0.0.5");
    // No package manager line: the fact is there, empty.
    assert_eq!(facts["package_manager"], "");
    assert_eq!(facts.len(), 14, "{facts:#?}");
}

#[test]
fn basic_facts_are_read_once_per_goal_until_forgotten() {
    let host = TestHost::check(FakeTransport::new().on(BASIC, 0, "os=Linux\n"));
    facts::basic(&host.session).expect("facts");
    facts::basic(&host.session).expect("facts");
    assert_eq!(host.commands().len(), 1, "read under --check too, once");
    host.session.forget_facts();
    facts::basic(&host.session).expect("facts");
    assert_eq!(host.commands().len(), 2);
}

#[test]
fn named_facts_table() {
    let cases = [
        (
            "users",
            "getent passwd",
            "root:x:0:0:root:/root:/bin/bash\nbroken line\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n",
            json!([
                {"name": "root", "uid": 0, "gid": 0, "home": "/root", "shell": "/bin/bash"},
                {"name": "www-data", "uid": 33, "gid": 33, "home": "/var/www", "shell": "/usr/sbin/nologin"},
            ]),
        ),
        (
            "groups",
            "getent group",
            "sudo:x:27:alice,bob\nstaff:x:50:\n",
            json!([
                {"name": "sudo", "gid": 27, "members": ["alice", "bob"]},
                {"name": "staff", "gid": 50, "members": []},
            ]),
        ),
        (
            "ports",
            "ss -Hltnu",
            "tcp   LISTEN 0      511          0.0.0.0:80        0.0.0.0:*\n\
             tcp   LISTEN 0      128             [::]:22           [::]:*\n\
             udp   UNCONN 0      0      127.0.0.53%lo:53        0.0.0.0:*\n",
            json!([
                {"proto": "tcp", "address": "0.0.0.0", "port": 80},
                {"proto": "tcp", "address": "[::]", "port": 22},
                {"proto": "udp", "address": "127.0.0.53%lo", "port": 53},
            ]),
        ),
    ];
    for (name, probe, printed, expected) in cases {
        let host = TestHost::new(FakeTransport::new().on(probe, 0, printed));
        let fact = facts::named(&host.session, name).expect("fact");
        assert_eq!(fact, expected, "{name}");
        assert_eq!(host.commands().len(), 1, "{name}");
        assert!(host.commands()[0].starts_with(probe), "{name}");
    }
}

#[test]
fn the_packages_fact_lists_installed_ones_by_the_hosts_manager() {
    let fake = FakeTransport::new()
        .on("for m in apt-get dnf yum apk", 0, "apt-get\n")
        .on("dpkg-query -W", 0, "curl\t7.88.1-10\nlibc6\t2.36-9\n");
    let host = TestHost::new(fake);
    let fact = facts::named(&host.session, "packages").expect("fact");
    assert_eq!(fact, json!({"curl": "7.88.1-10", "libc6": "2.36-9"}));
}

#[test]
fn an_unknown_fact_is_refused_naming_the_known_ones() {
    let host = TestHost::new(FakeTransport::new());
    let result = facts::named(&host.session, "disks").map(|_| false);
    refused(
        &host,
        result,
        "no fact `disks`; facts are users, groups, packages, ports",
    );
    assert!(host.commands().is_empty());
}
