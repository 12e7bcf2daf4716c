"""The fleet as a pyinfra inventory: every host strict about its key."""
import os

_env = os.environ
bench = []
for _line in open(_env["BENCH_HOSTS"]).read().splitlines():
    _name, _addr, _port = _line.split("\t")[:3]
    bench.append((_name, {
        "ssh_hostname": _addr, "ssh_port": int(_port), "ssh_user": "weft-test",
        "ssh_key": _env["BENCH_KEY"], "ssh_known_hosts_file": _env["BENCH_KNOWN"],
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False, "ssh_look_for_keys": False,
        "bench_remote": _env["BENCH_REMOTE"], "bench_payload": _env["BENCH_PAYLOAD"],
        "bench_template": _env["BENCH_TEMPLATE"],
    }))
