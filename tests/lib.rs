//! Integration tests: they drive the built `weft` binary against temporary projects. This is
//! the end-to-end tier: it needs root and a prepared Debian host (sshd, nspawn machines, apt),
//! which `scripts/test.sh` installs. Elsewhere it is skipped whole with one line, and `cargo
//! test` runs the unit tests alone (issue 32); under `scripts/test.sh` (`WEFT_E2E` set) it
//! always runs, and a missing prerequisite fails.

/// Ends this test binary before libtest starts, with one line, when it runs outside
/// `scripts/test.sh` as a plain user or on a host without sshd: its tests would fail there
/// for want of root and the host's set-up, not for anything in the code. libtest has no hook
/// for a whole binary, so this runs as the binary is loaded (glibc's `.init_array`).
#[used]
#[link_section = ".init_array"]
static SKIP_WITHOUT_A_PREPARED_HOST: extern "C" fn() = skip_without_a_prepared_host;

extern "C" fn skip_without_a_prepared_host() {
    use std::os::unix::fs::MetadataExt;
    if std::env::var_os("WEFT_E2E").is_some() {
        return;
    }
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root && std::path::Path::new("/usr/sbin/sshd").exists() {
        return;
    }
    println!("end-to-end tests skipped: run scripts/test.sh as root");
    std::process::exit(0);
}

#[cfg(feature = "acme")]
mod acme;
mod app;
mod check;
mod ci;
mod fleet;
mod harness;

mod cloud;
mod cloud_parallel;
mod container;
mod data;
mod deadlines;
mod diagnostics;
mod docs;
mod downloads;
mod editors;
mod ha;
mod init;
mod isolation;
mod layers;
mod limits;
mod lsp;
mod namespaces;
#[cfg(feature = "openstack")]
mod openstack;
mod ops;
mod plugins;
mod prims;
mod project;
mod readme;
mod run_local;
mod secrets;
mod spark;
mod ssh;
mod terminal;
mod watch;
mod webstack;
