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
  for i in $(seq 0 $((count - 1))); do
    local name="host-$i" hdir="$dir/host-$i" port
    mkdir -p "$hdir"
    port=$(free_port)
    [ -f "$hdir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$hdir/ssh_host_ed25519_key"
    cat > "$hdir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $hdir/ssh_host_ed25519_key
PidFile $hdir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
PrintMotd no
MaxStartups 200:30:400
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
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
    "$SSHD" -f "$hdir/sshd_config" -E "$hdir/sshd.log"
    wait_port "$port" || die "$name did not start (see $hdir/sshd.log)"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$hdir/ssh_host_ed25519_key.pub")" >> "$dir/known_hosts"
    printf '%s\t127.0.0.1\t%s\t%s\n' "$name" "$port" "$(cat "$hdir/sshd.pid")" >> "$dir/hosts.tsv"
    echo "  $name = \"root@127.0.0.1:$port\"," >> "$dir/weft.toml"
  done
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

stop() {
  local dir=$1
  [ -f "$dir/hosts.tsv" ] || return 0
  while IFS=$'\t' read -r _ _ _ pid; do
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done < "$dir/hosts.tsv"
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
