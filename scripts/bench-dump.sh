#!/usr/bin/env bash
# Benchmark: a 1 GB PostgreSQL database dumped through weft (issue 14), on a `local` machine
# (as root). Makes one `db` machine with Debian's PostgreSQL, fills a table until the database
# holds SIZE_MB (default 1024) MB, then times `postgres_dump` and `postgres_load` and prints
# weft's peak RSS for each: a dump streams through weft, so its memory must not grow with the
# dump's size (target: under 60 MB).
# Usage: scripts/bench-dump.sh [path/to/weft]   (default: a release build made here)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/release-weft.sh "${1:-}"
size_mb=${SIZE_MB:-1024}
work=$(mktemp -d)
export HOME="$work/home" XDG_CONFIG_HOME="$work/xdg"
export BENCH_DB_PASSWORD="bench-$RANDOM$RANDOM"
mkdir -p "$HOME" "$work/project"
cd "$work/project"
cat >weft.toml <<'TOML'
[project]
name = "bench"
default_env = "dev"

[apps.bench]
repos = []
database = "bench"
database_password = { env = "BENCH_DB_PASSWORD" }

[env.dev]
provider = "local"

[env.dev.machines.db]
count = 1
TOML
trap '"$weft" cloud destroy -e dev --yes >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
step "cloud create db (PostgreSQL from apt)" cloud create db -n 1
# Rows of 6 different MD5s (192 hex digits, which gzip shrinks to about half) until the table
# holds about size_mb.
rows=$((size_mb * 1024 * 1024 / 240))
sql() { "$weft" ssh db-0 -- "cd / && runuser -u postgres -- psql -qAt bench -c \"$1\""; }
sql "CREATE TABLE fill AS SELECT g, md5(g::text) || md5((g * 3)::text) || md5((g * 5)::text) || md5((g * 7)::text) || md5((g * 11)::text) || md5((g * 13)::text) AS t FROM generate_series(1, $rows) g" >/dev/null
sql "SELECT 'database size: ' || pg_size_pretty(pg_database_size('bench'))"
step "postgres_dump (${size_mb} MB database)" run postgres_dump dumps
ls -l dumps
step "postgres_load (replaces the database)" run postgres_load dumps --yes
