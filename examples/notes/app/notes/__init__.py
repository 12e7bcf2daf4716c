"""notes: notes kept in PostgreSQL, page views counted in Redis, uploads PUT to the files
machine at UPLOADS_URL (or, without one, stored in `uploads/`: the app runs in its shared
folder); nginx serves them at /uploads/ either way."""

import os
import urllib.parse
import urllib.request

from flask import Flask, abort, request
from werkzeug.utils import secure_filename

app = Flask(__name__)
UPLOADS = os.environ.get("NOTES_UPLOADS", "uploads")


def db():
    import psycopg

    # The schema is made by notes.migrate, which weft runs before a new build serves.
    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


def cache():
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


@app.route("/")
def index():
    views = cache().incr("views")
    with db() as conn:
        notes = [row[0] for row in conn.execute("SELECT text FROM notes ORDER BY id")]
    return f"views: {views}\n" + "".join(f"note: {n}\n" for n in notes)


@app.route("/notes", methods=["POST"])
def add_note():
    text = request.form.get("text", "").strip()
    if not text:
        abort(400)
    with db() as conn:
        conn.execute("INSERT INTO notes (text) VALUES (%s)", (text,))
    return "added\n", 201


@app.route("/upload", methods=["POST"])
def upload():
    file = request.files.get("file")
    name = secure_filename(file.filename) if file else ""
    if not name:
        abort(400)
    store = os.environ.get("UPLOADS_URL", "")
    if store:
        put = urllib.request.Request(
            store + urllib.parse.quote(name), data=file.read(), method="PUT"
        )
        with urllib.request.urlopen(put, timeout=30):
            pass
    else:
        os.makedirs(UPLOADS, exist_ok=True)
        file.save(os.path.join(UPLOADS, name))
    return f"/uploads/{name}\n", 201


@app.route("/health")
def health():
    return "ok\n"
