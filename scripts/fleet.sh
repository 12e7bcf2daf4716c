#!/usr/bin/env bash
# A test fleet of real OpenSSH sshd hosts on loopback, each with its own host key and port.
#
#   scripts/fleet.sh start N DIR     start N hosts; writes DIR/hosts.tsv (name addr port pid),
#                                    DIR/client_key (accepted by every host, for root and the
#                                    plain user weft-test), DIR/known_hosts and DIR/weft.toml;
#                                    DIR/host-I.sshd_config, if written first, is host I's own
#                                    sshd options (a `ForceCommand`, a stalled `Subsystem`)
#   scripts/fleet.sh stop DIR        stop every host of DIR by PID
#   scripts/fleet.sh drop DIR NAME   cut every open connection to host NAME (the host stays up)
#
# Needs root (sshd's privilege separation) and openssh-server. The plain user `weft-test`
# (password in DIR/sudo_password, may sudo) is created when missing.
#
# Behind a network: with FLEET_NET=1 the hosts run in a network namespace of their own
# (addresses 10.248.K.3, ports from 10000), reached through a link with a round trip of RTT
# milliseconds (± JITTER), losing LOSS percent of packets each way, carried by
# scripts/bench/wire.rs (this kernel has no netem qdisc). BASTION=1 adds a jump host at
# 10.248.K.2:2222 on the far side of the link, and DIR/ssh_config that sends every host
# through it (`weft -F DIR/ssh_config`). `stop` removes the namespace and the link.
# WIRE_TRACE=FILE has the link write a line per TCP packet to FILE (scripts/bench/wire.rs).
set -euo pipefail

die() { echo "fleet: $*" >&2; exit 1; }
SSHD=${SSHD:-/usr/sbin/sshd}
PLAIN_USER=weft-test
SUDO_PASSWORD=weft-test-sudo-Pw

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
  local port=$1
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# sshd_config HDIR ADDR PORT DIR LOGLEVEL: a host's sshd options (its key and pid file in HDIR,
# the fleet's authorized_keys in DIR).
sshd_config() {
  cat <<CONF
Port $3
ListenAddress $2
HostKey $1/ssh_host_ed25519_key
PidFile $1/sshd.pid
AuthorizedKeysFile $4/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
PrintMotd no
MaxStartups 200:30:400
Subsystem sftp internal-sftp
LogLevel $5
CONF
}

plain_user() {
  id "$PLAIN_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$PLAIN_USER"
  echo "$PLAIN_USER:$SUDO_PASSWORD" | chpasswd
  if [ -d /etc/sudoers.d ]; then
    echo "$PLAIN_USER ALL=(ALL) ALL" > "/etc/sudoers.d/$PLAIN_USER"
    chmod 0440 "/etc/sudoers.d/$PLAIN_USER"
  fi
}

start() {
  local count=$1 dir=$2
  [ -x "$SSHD" ] || die "$SSHD not found: apt-get install openssh-server"
  [ "$(id -u)" = 0 ] || die "must run as root"
  mkdir -p "$dir" /run/sshd
  dir=$(cd "$dir" && pwd)
  chmod 0755 "$dir"
  plain_user
  echo "$SUDO_PASSWORD" > "$dir/sudo_password"
  [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C weft-fleet -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  chmod 0644 "$dir/authorized_keys"
  : > "$dir/known_hosts"
  : > "$dir/hosts.tsv"
  {
    echo '[project]'
    echo 'name = "fleet"'
    echo '[env.fleet]'
    echo 'hosts = {'
  } > "$dir/weft.toml"
  local addr=127.0.0.1 run=()
  if [ -n "${FLEET_NET:-}" ]; then
    net_up "$dir"
    addr=$(cat "$dir/net/hosts_addr")
    run=(ip netns exec "$(cat "$dir/net/ns")")
    [ -z "${BASTION:-}" ] || bastion "$dir"
  fi
  for i in $(seq 0 $((count - 1))); do
    local name="host-$i" hdir="$dir/host-$i" port
    mkdir -p "$hdir"
    if [ ${#run[@]} -gt 0 ]; then port=$((10000 + i)); else port=$(free_port); fi
    [ -f "$hdir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$hdir/ssh_host_ed25519_key"
    sshd_config "$hdir" "$addr" "$port" "$dir" ERROR > "$hdir/sshd_config"
    # DIR/host-N.sshd_config, when present, is added to host N's config; a keyword it sets
    # replaces the default's line (sshd refuses a second `Subsystem sftp`).
    local extra="$dir/host-$i.sshd_config"
    if [ -f "$extra" ]; then
      local key
      for key in $(awk '/^[A-Za-z]/ && tolower($1) != "match" { print tolower($1) }' "$extra"); do
        awk -v k="$key" 'tolower($1) != k' "$hdir/sshd_config" > "$hdir/sshd_config.new"
        mv "$hdir/sshd_config.new" "$hdir/sshd_config"
      done
      cat "$extra" >> "$hdir/sshd_config"
    fi
    "${run[@]}" "$SSHD" -f "$hdir/sshd_config" -E "$hdir/sshd.log"
    # Behind the link, all ports are waited for at once below (each wait costs a round trip);
    # the pid file is there once sshd listens.
    if [ ${#run[@]} -gt 0 ]; then
      for _ in $(seq 200); do [ -s "$hdir/sshd.pid" ] && break; sleep 0.01; done
    else
      wait_port "$port" || die "$name did not start (see $hdir/sshd.log)"
    fi
    echo "[$addr]:$port $(cut -d' ' -f1,2 "$hdir/ssh_host_ed25519_key.pub")" >> "$dir/known_hosts"
    printf '%s\t%s\t%s\t%s\n' "$name" "$addr" "$port" "$(cat "$hdir/sshd.pid")" >> "$dir/hosts.tsv"
    echo "  $name = \"root@$addr:$port\"," >> "$dir/weft.toml"
  done
  if [ ${#run[@]} -gt 0 ]; then
    "${run[@]}" python3 - "$addr" "$count" <<'PY' || die "hosts behind the link did not start (see $dir/host-*/sshd.log)"
import socket, sys, time
addr, count = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 60
for port in range(10000, 10000 + count):
    while True:
        try:
            socket.create_connection((addr, port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit(f"{addr}:{port} does not answer")
            time.sleep(0.05)
PY
  fi
  echo '}' >> "$dir/weft.toml"
  # TOML inline tables must be one line: fold the table written above.
  python3 - "$dir/weft.toml" <<'PY'
import sys, re
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"hosts = \{\n(.*?)\}", lambda m: "hosts = { " + " ".join(m.group(1).split()).rstrip(",") + " }", text, flags=re.S)
open(path, "w").write(text)
PY
  echo "fleet: $count hosts up in $dir"
}

# The namespace, its two TUN devices and the wire between them: a /24 of 10.248.0.0/16 that no
# interface of this host uses yet. DIR/net keeps what `stop` removes.
net_up() {
  local dir=$1 k id ns a b mtu=${MTU:-1500}
  command -v ip >/dev/null || die "needs iproute2"
  # One fleet at a time picks its /24 and takes it (fleets may start in parallel tests).
  exec 9>/run/weft-fleet-net.lock
  flock 9
  # Not `ip | grep -q` under pipefail: grep's early exit would fail the pipe and pick a used one.
  local used
  used=$(ip -o addr show)
  for k in $(seq 1 250); do
    [[ "$used" == *" 10.248.$k."* ]] || break
  done
  id=$(printf '%s' "$dir" | sha256sum | cut -c1-8)
  ns="weft-fleet-$id" a="wfa-$id" b="wfb-$id"
  mkdir -p "$dir/net"
  echo "$ns" > "$dir/net/ns"
  echo "$a $b" > "$dir/net/devices"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip tuntap add dev "$a" mode tun
  ip tuntap add dev "$b" mode tun
  local rtt=${RTT:-0} jitter=${JITTER:-0} loss=${LOSS:-0}
  rtt=${rtt%ms} jitter=${jitter%ms} loss=${loss%\%}
  rm -f "$dir/net/ready"
  # Without the lock's descriptor (9>&-): the wire outlives this script and would hold the
  # lock, and every later fleet behind a link would wait for it.
  # The wire is one Rust file with the standard library only: built here, in under a second.
  command -v rustc >/dev/null || die "needs rustc to build the link (scripts/bench/wire.rs)"
  rustc -O --edition 2021 -o "$dir/net/wire" "$(dirname "$0")/bench/wire.rs" 9>&- \
    || die "could not build scripts/bench/wire.rs"
  "$dir/net/wire" "$a" "$b" --delay-ms "$(awk -v r="$rtt" 'BEGIN { print r / 2 }')" \
    --jitter-ms "$jitter" --loss "$loss" --ready "$dir/net/ready" ${WIRE_TRACE:+--trace "$WIRE_TRACE"} \
    > "$dir/net/wire.log" 2>&1 9>&- &
  echo $! > "$dir/net/wire.pid"
  for _ in $(seq 100); do [ -s "$dir/net/ready" ] && break; sleep 0.05; done
  [ -s "$dir/net/ready" ] || die "the wire did not start (see $dir/net/wire.log)"
  # The far end moves into the namespace with the wire attached to it.
  ip link set "$b" netns "$ns"
  ip addr add "10.248.$k.1" peer "10.248.$k.0/24" dev "$a"
  ip link set "$a" mtu "$mtu" up
  ip -n "$ns" addr add "10.248.$k.2/24" dev "$b"
  ip -n "$ns" addr add "10.248.$k.3/24" dev "$b"
  ip -n "$ns" link set "$b" mtu "$mtu" up
  exec 9>&-
  echo "10.248.$k.3" > "$dir/net/hosts_addr"
  echo "10.248.$k.2" > "$dir/net/bastion_addr"
  echo "fleet: link to $ns: round trip ${rtt} ms ± ${jitter}, ${loss}% loss each way, MTU $mtu"
}

# A jump host at 10.248.K.2:2222 in the namespace, and DIR/ssh_config that sends every host
# (10.248.K.3) through it.
bastion() {
  local dir=$1 ns addr hosts bdir="$dir/bastion"
  ns=$(cat "$dir/net/ns") addr=$(cat "$dir/net/bastion_addr") hosts=$(cat "$dir/net/hosts_addr")
  mkdir -p "$bdir"
  ssh-keygen -q -t ed25519 -N '' -C bastion -f "$bdir/ssh_host_ed25519_key"
  # VERBOSE: the log has a line per connection, which the tests and the bench count.
  sshd_config "$bdir" "$addr" 2222 "$dir" VERBOSE > "$bdir/sshd_config"
  ip netns exec "$ns" "$SSHD" -f "$bdir/sshd_config" -E "$bdir/sshd.log"
  echo "[$addr]:2222 $(cut -d' ' -f1,2 "$bdir/ssh_host_ed25519_key.pub")" >> "$dir/known_hosts"
  printf 'Host %s\n  ProxyJump root@%s:2222\n' "$hosts" "$addr" > "$dir/ssh_config"
}

stop() {
  local dir=$1
  [ -f "$dir/hosts.tsv" ] || return 0
  while IFS=$'\t' read -r _ _ _ pid; do
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done < "$dir/hosts.tsv"
  if [ -f "$dir/bastion/sshd.pid" ]; then
    pkill -P "$(cat "$dir/bastion/sshd.pid")" 2>/dev/null || true
    kill "$(cat "$dir/bastion/sshd.pid")" 2>/dev/null || true
  fi
  if [ -f "$dir/net/ns" ]; then
    # Whatever still runs in the namespace (a connection's sshd) goes with it.
    ip netns pids "$(cat "$dir/net/ns")" 2>/dev/null | xargs -r kill 2>/dev/null || true
    # The wire lets go of the devices as it exits; a device still held cannot be removed.
    local wire
    wire=$(cat "$dir/net/wire.pid")
    kill "$wire" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$wire" 2>/dev/null || break; sleep 0.02; done
    ip netns del "$(cat "$dir/net/ns")" 2>/dev/null || true
    local dev
    for dev in $(cat "$dir/net/devices"); do
      ip tuntap del dev "$dev" mode tun 2>/dev/null || true
    done
  fi
}

drop() {
  local dir=$1 name=$2 pid
  pid=$(awk -F'\t' -v n="$name" '$1 == n { print $4 }' "$dir/hosts.tsv")
  [ -n "$pid" ] || die "no host $name in $dir"
  # Each connection is a child of the listening sshd; killing them cuts the connections.
  pkill -KILL -P "$pid" || true
}

case "${1:-}" in
  start) [ $# -eq 3 ] || die "usage: fleet.sh start N DIR"; start "$2" "$3" ;;
  stop) [ $# -eq 2 ] || die "usage: fleet.sh stop DIR"; stop "$2" ;;
  drop) [ $# -eq 3 ] || die "usage: fleet.sh drop DIR NAME"; drop "$2" "$3" ;;
  *) die "usage: fleet.sh start N DIR | stop DIR | drop DIR NAME" ;;
esac
