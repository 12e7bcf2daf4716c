#!/bin/sh
# A real OpenStack for weft's tests (issue 34): Debian 12's Zed (keystone, glance, placement,
# nova with the fake compute driver, neutron-server with ML2 and no agents, MariaDB, RabbitMQ)
# in one `local` machine of the project scripts/openstack, whose image has the packages baked
# in (cached in /var/tmp/weft-images, so a host installs them once). One per host, shared by
# every test run; tests keep apart by env and namespace, as two envs in one project would.
#
#   scripts/openstack.sh up        make or start the machine and configure it (once), then
#                                  wait for its APIs; gives network weft-net a router to
#                                  `public` (floating IPs); prints where clouds.yaml and openrc are
#   scripts/openstack.sh env       the OS_* variables of user `weft` in project `weft`
#   scripts/openstack.sh clouds    the path of clouds.yaml (clouds `weft-test`, password, and
#                                  `weft-test-appcred`, an application credential)
#   scripts/openstack.sh down      terminate the machine (the image stays cached)
#   scripts/openstack.sh stats     the machine's memory now and its image's size
#   scripts/openstack.sh user-data  each server with a `weft:ssh-endpoint` metadata: its id,
#                                  vm state, endpoint and base64 user data, tab-separated (the
#                                  tests' stand-in sshds take the host key from it)
#   scripts/openstack.sh cli ARGS  `openstack ARGS` inside the machine, as user `weft`
#
# WEFT names the weft binary (default: target/debug/weft of this checkout, else `weft`).
# Needs root, as every `local` machine does.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
project=$here/openstack
repo=$(dirname "$here")
if [ -z "${WEFT:-}" ]; then
    if [ -x "${CARGO_TARGET_DIR:-$repo/target}/debug/weft" ]; then
        WEFT=${CARGO_TARGET_DIR:-$repo/target}/debug/weft
    else
        WEFT=$(command -v weft) || {
            echo "$0: no weft binary: build it, or set WEFT or CARGO_TARGET_DIR" >&2
            exit 2
        }
    fi
fi
state=$project/.weft-openstack
# Without the lock's descriptor: the machine weft starts would hold it for its whole life.
run_weft() { "$WEFT" -C "$project" --color never "$@" 9>&-; }

# The machine's state (running, stopped) or nothing when there is none.
machine_state() {
    list=$(run_weft cloud list -e test --json)
    echo "$list" | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["name"] == "openstack-0":
        print(m["state"])
'
}

# Configures the machine (scripts/openstack/bootstrap.sh, which picks up where a failed run
# stopped). A host busy with a whole test suite can make one of OpenStack's services miss a
# deadline; one more attempt then succeeds, and a second failure prints both attempts' ends.
provision() {
    for attempt in 1 2; do
        if run_weft run openstack_provision -e test -q >"$state/provision-$attempt.log" 2>&1; then
            [ "$attempt" = 1 ] || echo "openstack: the first configuration failed, the second worked; first attempt's end:" >&2
            [ "$attempt" = 1 ] || tail -n 20 "$state/provision-1.log" | grep -v '^ *$' >&2
            return 0
        fi
    done
    for attempt in 1 2; do
        echo "openstack: configuration attempt $attempt failed; its end ($state/provision-$attempt.log):" >&2
        grep -v 'monkey patching\|^openstack-0 |   \|Traceback\|Exception ignored\|AttributeError' \
            "$state/provision-$attempt.log" | tail -n 25 >&2
    done
    return 1
}

up() {
    mkdir -p "$state"
    # One `up` at a time per host (every checkout shares the machine): parallel test runs
    # wait for the first. Under /run, which only root can write.
    exec 9>>/run/weft-openstack.lock
    flock 9
    started=$(date +%s)
    case "$(machine_state)" in
    running) ;;
    "") run_weft cloud create openstack -e test --no-provision ;;
    *) run_weft cloud start openstack-0 -e test ;;
    esac
    provision
    ensure_router
    echo "openstack: up in $(($(date +%s) - started))s; clouds.yaml: $state/clouds.yaml, openrc: $state/openrc" >&2
}

# `openstack ARGS` inside the machine, as user `weft`.
os_cli() {
    quoted=
    for arg in "$@"; do
        quoted="$quoted '$(printf %s "$arg" | sed "s/'/'\\\\''/g")'"
    done
    run_weft ssh -e test openstack-0 -- ". /root/weft-openstack/openrc && openstack$quoted"
}

# The project's network reaches `public` through a router, as on most clouds, so its servers
# can get floating IPs of `public` (Neutron records them without an L3 agent). Each `up`
# checks the gateway and the subnet and adds what is missing, so an `up` that stopped half way
# is finished by the next; the router is found by name and made only when there is none (a
# failed look-up stops here rather than making a second one).
ensure_router() {
    router=$(os_cli router list --name weft-router -f value -c ID)
    case "$router" in
    "") router=$(os_cli router create weft-router -f value -c id) ;;
    *"
"*)
        echo "openstack: more than one router named weft-router: $router" >&2
        return 1
        ;;
    esac
    gateway=$(os_cli router show "$router" -f json -c external_gateway_info)
    case "$gateway" in
    *network_id*) ;;
    *) os_cli router set --external-gateway public "$router" ;;
    esac
    subnet=$(os_cli subnet show weft-net-v4 -f value -c id)
    ports=$(os_cli port list --router "$router" -f json -c "Fixed IP Addresses")
    case "$ports" in
    *"$subnet"*) ;;
    *) os_cli router add subnet "$router" weft-net-v4 ;;
    esac
}

case "${1:-}" in
up) up ;;
env) sed -n 's/^export //p' "$state/openrc" ;;
clouds) echo "$state/clouds.yaml" ;;
down)
    run_weft cloud terminate openstack-0 -e test --yes
    rm -rf "$state"
    ;;
stats)
    # The machine's processes are those in its init's PID namespace; their proportional
    # share of memory (Pss) is what the machine costs this host.
    nspawn=$(pgrep -f -- "--hostname=openstack-0 .*weft-openstack.test.openstack-0" | head -n 1)
    init=$(pgrep -P "$nspawn" | head -n 1)
    ns=$(readlink "/proc/$init/ns/pid")
    kib=0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
        pss=$(awk '/^Pss:/ { print $2 }' "$p/smaps_rollup" 2>/dev/null || true)
        kib=$((kib + ${pss:-0}))
    done
    echo "memory: $((kib / 1024)) MiB (Pss of the machine's processes)"
    image=$(tr '\0' '\n' <"/proc/$nspawn/cmdline" | sed -n '/^--directory$/{n;p;}')
    echo "image: $image, $(du -sh "$image" | cut -f1)"
    ;;
user-data)
    sql=$(cat <<'SQL'
SELECT i.uuid, i.vm_state, m.value, i.user_data FROM instances i
JOIN instance_metadata m ON m.instance_uuid = i.uuid AND m.`key` = "weft:ssh-endpoint"
AND m.deleted = 0 WHERE i.deleted = 0 AND i.user_data IS NOT NULL
SQL
)
    run_weft ssh -e test openstack-0 -- "mysql -N -B nova -e '$sql'"
    ;;
cli)
    shift
    os_cli "$@"
    ;;
*)
    echo "usage: $0 up|env|clouds|down|stats|user-data|cli ARGS" >&2
    exit 2
    ;;
esac
