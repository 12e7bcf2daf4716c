//! `packages` through apt, dnf, yum and apk.

use super::{changed, refused};
use crate::exec::ops::packages::{self, PackageState};
use crate::exec::test_host::{assert_ran, assert_ran_in, TestHost};
use crate::transport::fake::FakeTransport;

/// The probe that finds the package manager.
const WHICH: &str = "for m in apt-get dnf yum apk";
const DPKG: &str = "dpkg-query -W";
const RPM: &str = "rpm -qa";
const APK_LIST: &str = "apk list --installed";
const APT_INSTALL: &str =
    "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends";

fn wanted(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A host with `manager` whose installed packages are listed by `list` as `installed`.
fn host_with(manager: &str, list: &str, installed: &str) -> FakeTransport {
    FakeTransport::new()
        .on(WHICH, 0, &format!("{manager}\n"))
        .on(list, 0, installed)
}

#[test]
fn packages_table() {
    struct Case {
        name: &'static str,
        host: FakeTransport,
        state: PackageState,
        /// The command that changes the host, if one must.
        act: Option<&'static str>,
        /// What the probe that lists packages is.
        list: &'static str,
        report: &'static str,
    }
    let cases = [
        Case {
            name: "apt: only the missing one is installed, after a stale index is refreshed",
            host: host_with("apt-get", DPKG, "curl\t7.88.1-10\n"),
            state: PackageState::Present,
            act: Some("apt-get -o DPkg::Lock::Timeout=300 update -q; fi && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends git"),
            list: DPKG,
            report: "packages install: git",
        },
        Case {
            name: "apt: all present",
            host: host_with("apt-get", DPKG, "curl\t7.88.1-10\ngit\t1:2.39.2-1\n"),
            state: PackageState::Present,
            act: None,
            list: DPKG,
            report: "packages present: curl git",
        },
        Case {
            name: "apt: only the installed one is removed",
            host: host_with("apt-get", DPKG, "curl\t7.88.1-10\n"),
            state: PackageState::Absent,
            act: Some("DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 remove -y -q curl"),
            list: DPKG,
            report: "packages remove: curl",
        },
        Case {
            name: "apt: none of them installed, absent",
            host: host_with("apt-get", DPKG, ""),
            state: PackageState::Absent,
            act: None,
            list: DPKG,
            report: "packages absent: curl git",
        },
        Case {
            name: "dnf",
            host: host_with("dnf", RPM, "curl\t7.76.1-26.el9\n"),
            state: PackageState::Present,
            act: Some("dnf install -y git"),
            list: RPM,
            report: "packages install: git",
        },
        Case {
            name: "yum removes",
            host: host_with("yum", RPM, "git\t2.39.3-1.el9\n"),
            state: PackageState::Absent,
            act: Some("yum remove -y git"),
            list: RPM,
            report: "packages remove: git",
        },
        Case {
            name: "apk",
            host: host_with("apk", APK_LIST, "curl\t8.5.0-r0\n"),
            state: PackageState::Present,
            act: Some("apk add git"),
            list: APK_LIST,
            report: "packages install: git",
        },
    ];
    for case in cases {
        let host = TestHost::new(case.host);
        let result = packages::packages(&host.session, &wanted(&["curl", "git"]), case.state);
        let mut expected = vec![WHICH, WHICH, case.list];
        expected.extend(case.act);
        assert_ran_in(case.name, &host, &expected);
        assert_eq!(result.ok(), Some(case.act.is_some()), "{}", case.name);
        let reported = if case.act.is_some() {
            host.changes()
        } else {
            host.unchanged()
        };
        assert_eq!(reported, [case.report], "{}", case.name);
    }
}

#[test]
fn packages_latest_upgrades_what_the_index_has_newer_and_installs_what_is_missing() {
    let fake = host_with("apt-get", DPKG, "curl\t7.88.1-10\nvim\t2:9.0\n").on(
        "apt-get -s -q install --only-upgrade curl git vim",
        0,
        "Reading package lists...\nInst curl [7.88.1-10] (7.88.1-10+deb12u5 Debian-Security:12/stable-security [amd64])\nConf curl (7.88.1-10+deb12u5)\n",
    );
    let host = TestHost::new(fake);
    let result = packages::packages(
        &host.session,
        &wanted(&["curl", "git", "vim"]),
        PackageState::Latest,
    );
    changed(&host, result, "packages upgrade: git curl");
    let last = host.commands().pop().unwrap_or_default();
    assert!(last.ends_with(&format!("{APT_INSTALL} git curl")), "{last}");
}

#[test]
fn packages_under_check_only_read_the_host() {
    let host = TestHost::check(host_with("apt-get", DPKG, ""));
    let result = packages::packages(&host.session, &wanted(&["git"]), PackageState::Present);
    changed(&host, result, "packages install: git");
    assert!(host.all_changes_checked());
    assert_ran(&host, &[WHICH, WHICH, DPKG]);
}

#[test]
fn packages_fail_on_a_host_without_a_known_manager() {
    let host = TestHost::new(FakeTransport::new().on(WHICH, 0, ""));
    let result = packages::packages(&host.session, &wanted(&["git"]), PackageState::Present);
    refused(&host, result, "no supported package manager");
    assert_ran(&host, &[WHICH]);
}

#[test]
fn a_failed_install_fails_the_operation_with_the_managers_words() {
    let fake = host_with("apt-get", DPKG, "").answer(
        APT_INSTALL,
        crate::transport::fake::Answer {
            code: 100,
            stdout: String::new(),
            stderr: "E: Unable to locate package nosuch\n".into(),
        },
    );
    let host = TestHost::new(fake);
    let result = packages::packages(&host.session, &wanted(&["nosuch"]), PackageState::Present);
    refused(
        &host,
        result,
        "exited with 100: E: Unable to locate package nosuch",
    );
}
