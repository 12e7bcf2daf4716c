#!/usr/bin/env bash
# Benchmark: one provisioning goal on N real sshd hosts, weft against raw OpenSSH.
#
#   scripts/bench-fleet.sh [N...]        default: 10 50
#
# The goal reads facts (`uname -sr`, `id -u`), ensures a directory, uploads a 1 MiB file
# (skipped when unchanged), renders a template and runs `sha256sum`. Each tool logs in as the
# plain user weft-test. "cold" is the first run (nothing on the hosts yet, no OpenSSH master
# connections); "warm" runs it again (files unchanged, OpenSSH masters still open).
# Raw OpenSSH is `ssh` with ControlMaster, one script per host, driven by `xargs -P N`.
# Needs root and openssh-server (scripts/fleet.sh starts the hosts); prints wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 50)
. scripts/release-weft.sh ""
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)"; exit 1; }

measure() { # label, command...: prints "label  wall  rss"
  local label=$1; shift
  if ! /usr/bin/time -o /tmp/weft-bench-time -f '%e %M' "$@" >/dev/null 2>/tmp/weft-bench-err; then
    echo "bench: $label failed:"; cat /tmp/weft-bench-err; exit 1
  fi
  local wall rss
  read -r wall rss < /tmp/weft-bench-time
  printf '  %-22s %7.2f s   %6.1f MB peak RSS\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)"
}

for n in "${sizes[@]}"; do
  work=$(mktemp -d /tmp/weft-bench.XXXXXX)
  chmod 0755 "$work"
  trap '"$repo/scripts/fleet.sh" stop "$work/fleet" || true; rm -rf "$work"' EXIT
  "$repo/scripts/fleet.sh" start "$n" "$work/fleet" >/dev/null
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
  measure "raw OpenSSH, cold" sh -c "awk -F'\t' '{ print \$1, \$3 }' '$work/fleet/hosts.tsv' | xargs -P $n -n 2 sh -c '\"$work/raw.sh\" \"\$0\" \"\$1\" \"$key\" \"$known\" \"$ctl\" \"$remote\" \"$proj/payload.bin\"'"
  measure "raw OpenSSH, warm" sh -c "awk -F'\t' '{ print \$1, \$3 }' '$work/fleet/hosts.tsv' | xargs -P $n -n 2 sh -c '\"$work/raw.sh\" \"\$0\" \"\$1\" \"$key\" \"$known\" \"$ctl\" \"$remote\" \"$proj/payload.bin\"'"
  measure "weft, cold" "$weft" -C "$proj" run bench_all -e bench -i "$key" --known-hosts "$known" -p "$n"
  measure "weft, warm" "$weft" -C "$proj" run bench_all -e bench -i "$key" --known-hosts "$known" -p "$n"
  # Close the OpenSSH masters before the hosts go away.
  for sock in "$ctl"/*; do [ -S "$sock" ] && ssh -o "ControlPath=$sock" -O exit x 2>/dev/null || true; done
  "$repo/scripts/fleet.sh" stop "$work/fleet"
  rm -rf "$work" "$remote"
  trap - EXIT
done
