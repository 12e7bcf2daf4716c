"""hello: a WSGI app that says which version and which machine answered."""

import socket
from importlib.metadata import version

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return f"hello {version('hello')} from {socket.gethostname()}\n"


@app.route("/health")
def health():
    return "ok\n"
