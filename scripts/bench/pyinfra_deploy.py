"""The benchmark workload with pyinfra."""
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

remote = host.data.bench_remote
facts = host.get_fact(Command, "uname -sr; id -u").split("\n")
d = f"{remote}/pyi-{host.name}"
files.directory(name="directory", path=d)
files.put(name="upload", src=host.data.bench_payload, dest=f"{d}/payload.bin")
files.template(name="template", src=host.data.bench_template, dest=f"{d}/app.conf",
               kernel=facts[0])
server.shell(name="checksum", commands=[f"sha256sum '{d}/payload.bin' '{d}/app.conf'"])
