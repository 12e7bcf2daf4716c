#!/usr/bin/env bash
# Benchmark: `weft lsp` on examples/hello-wsgi (targets: a completion in under 50 ms, under
# 50 MB RSS after 1,000 edits). A Python client speaks LSP over the server's stdio.
# Usage: scripts/bench-lsp.sh [path/to/weft]   (default: a release build made here)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/release-weft.sh "${1:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/hello-wsgi "$work/hello-wsgi"
export XDG_CONFIG_HOME="$work/xdg" XDG_CACHE_HOME="$work/cache"
cd "$work/hello-wsgi"
python3 - "$weft" "$PWD" <<'PY'
import json, statistics, subprocess, sys, time

weft, root = sys.argv[1], sys.argv[2]
server = subprocess.Popen([weft, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
next_id = 0

def send(message):
    body = json.dumps(message).encode()
    server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    server.stdin.flush()

def receive():
    length = 0
    while True:
        line = server.stdout.readline().strip()
        if not line:
            break
        if line.startswith(b"Content-Length:"):
            length = int(line.split(b":")[1])
    return json.loads(server.stdout.read(length))

def request(method, params):
    global next_id
    next_id += 1
    send({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params})
    while True:
        message = receive()
        if message.get("id") == next_id:
            return message.get("result")

def notify(method, params):
    send({"jsonrpc": "2.0", "method": method, "params": params})

def rss_kib():
    with open(f"/proc/{server.pid}/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))

start = time.perf_counter()
request("initialize", {"processId": None, "rootUri": f"file://{root}", "capabilities": {}})
notify("initialized", {})
print(f"initialize: {(time.perf_counter() - start) * 1000:.1f} ms")
uri = f"file://{root}/deploy/site.rhai"
text = open("deploy/site.rhai").read() + "\nfn bench(host) {\n    host.\n    run_goal(\"\n    host.vars.\n}\n"
line = text.count("\n") - 4
notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rhai", "version": 1, "text": text}})
at = {"textDocument": {"uri": uri}, "position": {"line": line, "character": 9}}
goal_at = {"textDocument": {"uri": uri}, "position": {"line": line + 1, "character": 14}}
var_at = {"textDocument": {"uri": uri}, "position": {"line": line + 2, "character": 14}}
start = time.perf_counter()
items = request("textDocument/completion", goal_at)
print(f"first goal-name completion (loads and compiles the project): {(time.perf_counter() - start) * 1000:.1f} ms, {len(items)} goals")
for name, where in [("host.", at), ('run_goal("', goal_at), ("host.vars.", var_at)]:
    times = []
    for _ in range(200):
        start = time.perf_counter()
        request("textDocument/completion", where)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"completion after {name}: median {statistics.median(times):.2f} ms, p95 {times[189]:.2f} ms (200 requests)")
print(f"RSS after open: {rss_kib() / 1024:.1f} MiB")
for version in range(2, 1002):
    edited = text.replace("host.\n    run", f"host.packages([\"p{version}\"]);\n    run")
    notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": edited}]})
    if version % 100 == 0:
        request("textDocument/hover", at)  # every edit before it has been handled
request("textDocument/completion", at)
print(f"RSS after 1,000 edits: {rss_kib() / 1024:.1f} MiB")
request("shutdown", None)
notify("exit", None)
server.wait(timeout=10)
PY
