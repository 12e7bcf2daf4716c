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

ratio() { # label a, label b: prints "a/b = x"
  printf '  %-36s %5.2fx\n' "$1 / $2" "$(echo "${wall[$1]} / ${wall[$2]}" | bc -l)"
}

for n in "${sizes[@]}"; do
  work=$(mktemp -d /tmp/weft-bench.XXXXXX)
  chmod 0755 "$work"
  trap '"$repo/scripts/fleet.sh" stop "$work/fleet" || true; rm -rf "$work"' EXIT
  "$repo/scripts/fleet.sh" start "$n" "$work/fleet" >/dev/null
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
      printf '%s%s = "weft-test@127.0.0.1:%s"' "$sep" "$name" "$port"; sep=', '
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
name=$1 port=$2 key=$3 known=$4 ctl=$5 remote=$6 payload=$7
opts=(-o BatchMode=yes -o ControlMaster=auto -o "ControlPath=$ctl/%C" -o ControlPersist=120
      -o "UserKnownHostsFile=$known" -o StrictHostKeyChecking=yes -i "$key" -p "$port")
r() { ssh "${opts[@]}" weft-test@127.0.0.1 "$@"; }
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
    measure "raw OpenSSH, cold" sh -c "awk -F'\t' '{ print \$1, \$3 }' '$work/fleet/hosts.tsv' | xargs -P $n -n 2 sh -c '\"$work/raw.sh\" \"\$0\" \"\$1\" \"$key\" \"$known\" \"$ctl\" \"$remote\" \"$proj/payload.bin\"'"
    measure "raw OpenSSH, warm" sh -c "awk -F'\t' '{ print \$1, \$3 }' '$work/fleet/hosts.tsv' | xargs -P $n -n 2 sh -c '\"$work/raw.sh\" \"\$0\" \"\$1\" \"$key\" \"$known\" \"$ctl\" \"$remote\" \"$proj/payload.bin\"'"
    measure "weft, cold" "$weft" -C "$proj" run bench_all -e bench -i "$key" --known-hosts "$known" -p "$n"
    measure "weft, warm" "$weft" -C "$proj" run bench_all -e bench -i "$key" --known-hosts "$known" -p "$n"
    # weft's default fan-out (32 hosts at once): its memory depends on that, not on N. Cold
    # again, as weft's first run on these hosts would be.
    rm -rf "$remote"/host-* "$XDG_CACHE_HOME"
    measure "weft -p 32, cold" "$weft" -C "$proj" run bench_all -e bench -i "$key" --known-hosts "$known"
    fab=(env "$venv/bin/python" "$bench/fabric_bench.py" "$work/fleet/hosts.tsv" "$key" "$known" "$remote" "$proj/payload.bin" "$n")
    measure "Fabric, cold" "${fab[@]}"
    measure "Fabric, warm" "${fab[@]}"
    pyi=(env BENCH_HOSTS="$work/fleet/hosts.tsv" BENCH_KEY="$key" BENCH_KNOWN="$known"
         BENCH_REMOTE="$remote" BENCH_PAYLOAD="$proj/payload.bin" BENCH_TEMPLATE="$bench/app.conf.j2"
         "$venv/bin/pyinfra" "$bench/pyinfra_inventory.py" "$bench/pyinfra_deploy.py" -y --parallel "$n")
    measure "pyinfra, cold" "${pyi[@]}"
    measure "pyinfra, warm" "${pyi[@]}"
  done
  medians
  # Every tool left its files on every host.
  for tool in "" raw- fab- pyi-; do
    got=$(find "$remote" -path "$remote/${tool}host-*/app.conf" | wc -l)
    [ "$got" = "$n" ] || { echo "bench: ${tool:-weft-}: $got of $n hosts have app.conf"; exit 1; }
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
