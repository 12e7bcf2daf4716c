#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine (as root), then runs
# the whole suite. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The SSH tests start real sshd hosts (scripts/fleet.sh) and log in as a plain user that may
# sudo; they also use ssh-keygen, ssh-agent and python3 (free ports). The operation tests
# drive git, a Debian python3 with venv and pip, supervisor, and apt itself (installing and
# removing the tiny package `sl` from Debian's mirror).
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v sudo >/dev/null || need+=(sudo)
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
dpkg -s python3-pip >/dev/null 2>&1 || need+=(python3-pip)
command -v git >/dev/null || need+=(git)
command -v supervisord >/dev/null || need+=(supervisor)
command -v ip >/dev/null || need+=(iproute2)
[ -d /etc/cron.d ] || need+=(cron)
# `local` machines boot a Debian 12 image built with debootstrap under systemd-nspawn, and reach
# Debian's mirror through NAT (nftables) on the weft0 bridge: they install nginx, haproxy and
# curl themselves. The image is cached in WEFT_IMAGE_CACHE (default /var/tmp/weft-images),
# outside the clone, so it is built once per host, not once per run.
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v nft >/dev/null || need+=(nftables)
# The ACME tests run Pebble, Let's Encrypt's test server, and its DNS (pebble-challtestsrv)
# on this host: nothing reaches a real ACME server.
command -v pebble-challtestsrv >/dev/null || need+=(pebble)
# The container tests (tests/container.rs) put podman and Debian's docker-registry into role
# images the same way, and fetch busybox-static for their image with `apt-get download` here
# (nothing is installed on this host).
# The editor test drives `weft lsp` from headless Neovim's built-in client.
command -v nvim >/dev/null || need+=(neovim)
# The VS Code extension is built with npm (scripts/build-vscode.sh) by a test.
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The EC2 tests run against moto's server (PyPI), started by the tests on a loopback port.
# Debian's python3 refuses `pip install` into the system (PEP 668), so moto lives in a
# virtualenv this script owns, outside the clone so CI keeps it between runs; the tests start
# moto with that virtualenv's python ($WEFT_TEST_PYTHON).
venv=${WEFT_TEST_VENV:-/var/tmp/weft-test-venv}
moto_pin='moto[server]==5.2.1'
if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$moto_pin"
fi
export WEFT_TEST_PYTHON="$venv/bin/python"

# Every local machine's systemd takes inotify instances from root's quota (128 by default), and
# the suite runs many machines at once; past the quota a machine's sshd never starts.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
  sysctl -q -w fs.inotify.max_user_instances=1024 || true
fi

# Machines that a test run killed before its clean-up (a CI timeout, a kill -9) left running,
# with their addresses reserved: each test keeps them in a folder of its own, $TMPDIR/weft-test*,
# which is gone after a run that ended. Destroyed once that folder is older than any run
# (WEFT_TEST_SWEEP_MINUTES, default 180), so a run beside this one keeps its machines.
sweep_leftovers() {
  local weft=$1 dir ns
  for dir in "${TMPDIR:-/tmp}"/weft-test*; do
    [ -d "$dir/home/.local/share/weft/machines" ] || continue
    [ -n "$(find "$dir" -maxdepth 0 -mmin "+${WEFT_TEST_SWEEP_MINUTES:-180}")" ] || continue
    for ns in $(HOME="$dir/home" "$weft" cloud list --all --json 2>/dev/null |
      /usr/bin/python3 -c 'import json, sys; print(*sorted({m["namespace"] for m in json.load(sys.stdin)}))'); do
      HOME="$dir/home" "$weft" cloud destroy --namespace "$ns" --yes -q --color never ||
        echo "test.sh: could not destroy the machines of $ns in $dir" >&2
    done
    if [ "$(HOME="$dir/home" "$weft" cloud list --all --json 2>/dev/null)" = "[]" ]; then
      rm -rf "$dir"
    fi
  done
}

# The OpenStack test (tests/openstack.rs) runs against a real OpenStack in a `local` machine,
# one per host (scripts/openstack.sh): its image is built once per host (1.5 min, cached in
# the image cache), its first configuration takes 2 to 4 min. Both start now, in the background,
# to overlap the build of the tests; the test waits for them (a lock) and reports a failure.
# Not for a run of the unit tests alone.
case " $* " in
*" --lib "*) ;;
*)
  cargo build -q
  sweep_leftovers "${CARGO_TARGET_DIR:-target}/debug/weft"
  WEFT="${CARGO_TARGET_DIR:-target}/debug/weft" scripts/openstack.sh up \
    >"${TMPDIR:-/tmp}/weft-openstack-up.log" 2>&1 &
  ;;
esac

# The end-to-end tier (tests/) skips itself outside this script for a plain user or a host
# without sshd; here it must run, and fail on anything missing rather than skip.
export WEFT_E2E=1
cargo test "$@"
