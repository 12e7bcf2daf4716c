#!/usr/bin/env bash
# Benchmark: one provisioning goal on N real sshd hosts, weft against raw OpenSSH, Fabric and
# pyinfra.
#
#   scripts/bench-fleet.sh [N...]        default: 10 50
#   WEFT_BIN=path/to/weft scripts/bench-fleet.sh ...   time that binary instead of a release build
#   RUNS=3 scripts/bench-fleet.sh ...    repeat every measure (cold state restored each round) and
#                                        compare medians of wall time; RSS is the highest seen
#
# The goal reads facts (`uname -sr`, `id -u`), ensures a directory, uploads a 1 MiB file
# (skipped when unchanged), renders a template and runs `sha256sum`. Each tool logs in as the
# plain user weft-test. "cold" is the first run (nothing on the hosts yet, no OpenSSH master
# connections); "warm" runs it again (files unchanged, OpenSSH masters still open).
# Raw OpenSSH is `ssh` with ControlMaster, one script per host, driven by `xargs -P N`.
# Fabric (one thread per host, scripts/bench/fabric_bench.py) and pyinfra (--parallel N,
# scripts/bench/pyinfra_*.py) are pinned below and installed with pip into a virtualenv made
# with Debian's /usr/bin/python3 in /var/tmp/weft-bench-venv. Every tool checks host keys
# strictly against the fleet's known_hosts; all run N hosts at once. weft also runs once more
# cold with its default fan-out (-p 32), whose peak RSS stays flat as N grows.
# Needs root and openssh-server (scripts/fleet.sh starts the hosts); prints wall time and peak RSS.
#
# Over a network: FLEET_NET=1 RTT=50 [JITTER=2] [LOSS=1] puts the hosts behind a link with that
# round trip (ms) and loss (% each way), in a network namespace (scripts/fleet.sh). The bench
# then also times weft on one host alone, cold and warm: that run is a chain of round trips
# (about RTT × the workload's round trips), the floor no fan-out gets under, and every run is
# shown against it.
# BASTION=1 sends weft through one jump host and counts the connections the jump host took.
# TOOLS="weft fabric pyinfra raw" picks the tools (default all; with BASTION, weft only).
# P="32 default" picks weft's extra fan-outs measured cold ("default": no -p, so weft's own
# rule, cold and warm; "none": none); default 32. ALL_AT_ONCE=0 leaves out weft's runs with -p N.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 50)
. scripts/release-weft.sh "${WEFT_BIN:-}"
case "$weft" in */debug/*) build="debug build" ;; *) build="given binary" ;; esac
[ -n "${WEFT_BIN:-}" ] || build="release build"
echo "weft: $weft ($build)"
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)"; exit 1; }

# Fabric and pyinfra, pinned, in a virtualenv of their own (PEP 668: not in Debian's python).
pins="fabric==3.2.3 pyinfra==3.10.0"
venv=/var/tmp/weft-bench-venv
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
  echo "$pins" > "$venv/.pins"
fi
bench="$repo/scripts/bench"

runs=${RUNS:-1}
tools=" ${TOOLS:-weft fabric pyinfra raw} "
[ -z "${BASTION:-}" ] || tools=" ${TOOLS:-weft} "
fanouts=${P:-32}
uses() { [[ "$tools" == *" $1 "* ]]; }
declare -A wall walls peak
labels=()

measure() { # label, command...: prints "label  wall  rss", keeps every round's wall time
  local label=$1; shift
  if ! /usr/bin/time -o /tmp/weft-bench-time -f '%e %M' "$@" >/dev/null 2>/tmp/weft-bench-err; then
    echo "bench: $label failed:"; cat /tmp/weft-bench-err; exit 1
  fi
  local secs rss
  read -r secs rss < /tmp/weft-bench-time
  [ -n "${walls[$label]:-}" ] || labels+=("$label")
  walls[$label]="${walls[$label]:-} $secs"
  [ "${peak[$label]:-0}" -ge "$rss" ] || peak[$label]=$rss
  printf '  %-22s %7.2f s   %6.1f MB peak RSS\n' "$label" "$secs" "$(echo "$rss / 1024" | bc -l)"
}

medians() { # sets wall[label] to the median of its rounds; prints them when there were several
  local label
  for label in "${labels[@]}"; do
    # shellcheck disable=SC2086
    wall[$label]=$(printf '%s\n' ${walls[$label]} | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    [ "$runs" -gt 1 ] && printf '  %-22s %7.2f s   %6.1f MB peak RSS  (median of %d)\n' \
      "$label" "${wall[$label]}" "$(echo "${peak[$label]} / 1024" | bc -l)" "$runs"
  done
  return 0
}

ratio() { # label a, label b: prints "a/b = x" when both were measured
  [ -n "${wall[$1]:-}" ] && [ -n "${wall[$2]:-}" ] || return 0
  printf '  %-36s %5.2fx\n' "$1 / $2" "$(echo "${wall[$1]} / ${wall[$2]}" | bc -l)"
}

floors() { # behind a link: each run's wall time over its floor (weft on one host alone)
  local floor label kind
  [ -n "${wall["weft, 1 host, cold"]:-}" ] || return 0
  for label in "${labels[@]}"; do
    case "$label" in *"1 host"*) continue ;; *warm*) kind=warm ;; *) kind=cold ;; esac
    floor=${wall["weft, 1 host, $kind"]}
    printf '  %-36s %5.1fx the %s floor (%.2f s)\n' "$label" "$(echo "${wall[$label]} / $floor" | bc -l)" "$kind" "$floor"
  done
}

for n in "${sizes[@]}"; do
  work=$(mktemp -d /tmp/weft-bench.XXXXXX)
  chmod 0755 "$work"
  trap '"$repo/scripts/fleet.sh" stop "$work/fleet" || true; rm -rf "$work"' EXIT
  "$repo/scripts/fleet.sh" start "$n" "$work/fleet" | grep -v '^fleet: [0-9]* hosts up' || true
  [ -s "$work/fleet/hosts.tsv" ] || { echo "bench: the fleet did not start"; exit 1; }
  addr=$(head -1 "$work/fleet/hosts.tsv" | cut -f2)
  via=()
  [ ! -f "$work/fleet/ssh_config" ] || via=(-F "$work/fleet/ssh_config")
  # weft keeps the sums of the files it wrote (exec/remote_sums.rs) here, not in the user's cache.
  export XDG_CACHE_HOME="$work/cache"
  key="$work/fleet/client_key"; known="$work/fleet/known_hosts"
  remote="/tmp/weft-bench-remote"
  rm -rf "$remote"; mkdir -p "$remote"; chmod 0777 "$remote"

  # The weft project.
  proj="$work/project"; mkdir -p "$proj/deploy" "$proj/templates/bench"
  head -c 1048576 /dev/urandom > "$proj/payload.bin"
  {
    echo '[project]'; echo 'name = "bench"'
    echo '[env.bench]'
    printf 'hosts = { '
    sep=''
    while IFS=$'\t' read -r name _ port _; do
      printf '%s%s = "weft-test@%s:%s"' "$sep" "$name" "$addr" "$port"; sep=', '
    done < "$work/fleet/hosts.tsv"
    echo ' }'
  } > "$proj/weft.toml"
  cat > "$proj/templates/bench/app.conf.hbs" <<'T'
host = {{host.name}}
kernel = {{kernel}}
T
  cat > "$proj/deploy/bench.rhai" <<R
/// The benchmark workload: facts, a directory, an upload, a template, a checksum.
fn bench_all(host) {
    let facts = host.run("uname -sr; id -u", #{ quiet: true, check_safe: true }).stdout.split("\n");
    let dir = "$remote/" + host.name;
    host.run(["mkdir", "-p", dir], #{ quiet: true });
    host.upload("payload.bin", dir + "/payload.bin");
    host.template("bench/app.conf.hbs", dir + "/app.conf", #{ kernel: facts[0] });
    host.run(["sha256sum", dir + "/payload.bin", dir + "/app.conf"], #{ quiet: true });
}
R

  # The same work with raw OpenSSH, one script per host.
  ctl="$work/ctl"; mkdir -p "$ctl"
  cat > "$work/raw.sh" <<'RAW'
#!/usr/bin/env bash
set -euo pipefail
name=$1 port=$2 key=$3 known=$4 ctl=$5 remote=$6 payload=$7 addr=$8
opts=(-o BatchMode=yes -o ControlMaster=auto -o "ControlPath=$ctl/%C" -o ControlPersist=120
      -o "UserKnownHostsFile=$known" -o StrictHostKeyChecking=yes -i "$key" -p "$port")
r() { ssh "${opts[@]}" "weft-test@$addr" "$@"; }
facts=$(r 'uname -sr; id -u')
dir="$remote/raw-$name"
r "mkdir -p '$dir'"
local_sum=$(sha256sum "$payload" | cut -d' ' -f1)
remote_sum=$(r "sha256sum '$dir/payload.bin' 2>/dev/null | cut -d' ' -f1" || true)
if [ "$local_sum" != "$remote_sum" ]; then
  r "cat > '$dir/.payload.tmp' && mv -f '$dir/.payload.tmp' '$dir/payload.bin'" < "$payload"
fi
printf 'host = %s\nkernel = %s\n' "$name" "$(echo "$facts" | head -1)" | r "cat > '$dir/app.conf'"
r "sha256sum '$dir/payload.bin' '$dir/app.conf'" >/dev/null
RAW
  chmod +x "$work/raw.sh"
  echo "== $n hosts =="
  walls=(); peak=(); labels=()
  for round in $(seq "$runs"); do
    if [ "$round" -gt 1 ]; then
      # Cold again: no OpenSSH masters, no files on the hosts, no sums weft kept of them.
      for sock in "$ctl"/*; do [ -S "$sock" ] && ssh -o "ControlPath=$sock" -O exit x 2>/dev/null || true; done
      rm -rf "${remote:?}"/* "$XDG_CACHE_HOME"
      echo "  -- round $round"
    fi
    raw=(sh -c "awk -F'\t' '{ print \$1, \$3 }' '$work/fleet/hosts.tsv' | xargs -P $n -n 2 sh -c '\"$work/raw.sh\" \"\$0\" \"\$1\" \"$key\" \"$known\" \"$ctl\" \"$remote\" \"$proj/payload.bin\" \"$addr\"'")
    if uses raw; then
      measure "raw OpenSSH, cold" "${raw[@]}"
      measure "raw OpenSSH, warm" "${raw[@]}"
    fi
    wr=("$weft" -C "$proj" run bench_all -e bench -i "$key" --known-hosts "$known" "${via[@]}")
    if uses weft; then
      if [ -f "$work/fleet/net/ns" ]; then
        # One host alone: a chain of round trips that no fan-out shortens.
        measure "weft, 1 host, cold" "${wr[@]}" -H host-0
        measure "weft, 1 host, warm" "${wr[@]}" -H host-0
        rm -rf "$remote"/host-* "$XDG_CACHE_HOME"
      fi
      if [ "${ALL_AT_ONCE:-1}" = 1 ]; then
        measure "weft, cold" "${wr[@]}" -p "$n"
        measure "weft, warm" "${wr[@]}" -p "$n"
      fi
      # weft's default fan-out (and any other asked for): its memory depends on that, not on
      # N. Cold again, as weft's first run on these hosts would be.
      for p in $fanouts; do
        # A fan-out of N or more is the run above: the files it left stay, for the check below.
        # "none" asks for no run here.
        [ "$p" != none ] || continue
        [ "$p" = default ] || [ "$p" -lt "$n" ] || continue
        rm -rf "$remote"/host-* "$XDG_CACHE_HOME"
        if [ "$p" = default ]; then
          measure "weft default -p, cold" "${wr[@]}"
          measure "weft default -p, warm" "${wr[@]}"
          continue
        fi
        measure "weft -p $p, cold" "${wr[@]}" -p "$p"
      done
    fi
    fab=(env "$venv/bin/python" "$bench/fabric_bench.py" "$work/fleet/hosts.tsv" "$key" "$known" "$remote" "$proj/payload.bin" "$n")
    if uses fabric; then
      measure "Fabric, cold" "${fab[@]}"
      measure "Fabric, warm" "${fab[@]}"
    fi
    pyi=(env BENCH_HOSTS="$work/fleet/hosts.tsv" BENCH_KEY="$key" BENCH_KNOWN="$known"
         BENCH_REMOTE="$remote" BENCH_PAYLOAD="$proj/payload.bin" BENCH_TEMPLATE="$bench/app.conf.j2"
         "$venv/bin/pyinfra" "$bench/pyinfra_inventory.py" "$bench/pyinfra_deploy.py" -y --parallel "$n")
    if uses pyinfra; then
      measure "pyinfra, cold" "${pyi[@]}"
      measure "pyinfra, warm" "${pyi[@]}"
    fi
  done
  medians
  floors
  if [ -f "$work/fleet/bastion/sshd.log" ]; then
    echo "  the jump host took $(grep -c 'Connection from' "$work/fleet/bastion/sshd.log") connections in all ($runs round(s) of every weft run above)"
  fi
  # Every tool left its files on every host.
  for tool in weft: raw:raw- fabric:fab- pyinfra:pyi-; do
    uses "${tool%%:*}" || continue
    got=$(find "$remote" -path "$remote/${tool#*:}host-*/app.conf" | wc -l)
    [ "$got" = "$n" ] || { echo "bench: ${tool%%:*}: $got of $n hosts have app.conf"; exit 1; }
    echo "  ${tool%%:*}: all $n hosts verified (app.conf written, payload checked)"
  done
  for t in cold warm; do
    ratio "weft, $t" "Fabric, $t"
    ratio "weft, $t" "pyinfra, $t"
    ratio "weft, $t" "raw OpenSSH, $t"
  done
  # Close the OpenSSH masters before the hosts go away.
  for sock in "$ctl"/*; do [ -S "$sock" ] && ssh -o "ControlPath=$sock" -O exit x 2>/dev/null || true; done
  "$repo/scripts/fleet.sh" stop "$work/fleet"
  rm -rf "$work" "$remote"
  trap - EXIT
done
