"""The schema of notes: `python -m notes.migrate` brings the database to the newest version.

weft runs it once per deploy of a new build (`migrate` in weft.toml), on one app machine,
before any machine switches to that build. Each step runs once, in order, and its number is
recorded in `schema_version`. Add steps at the end; never change one that has run. A rollback
does not undo steps, so a step must leave a schema the previous release can still use: add
columns and tables first, and drop what the old code reads only a release later.
"""

import os

import psycopg

STEPS = [
    "CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, text text NOT NULL)",
]


def migrate(url):
    """Runs the steps the database lacks, all in one transaction; returns its version."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        # Two migrations at once wait for each other instead of running a step twice.
        conn.execute("LOCK TABLE schema_version IN EXCLUSIVE MODE")
        done = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        for version, step in enumerate(STEPS[done:], start=done + 1):
            conn.execute(step)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            print(f"notes: schema version {version}")
    return max(done, len(STEPS))


if __name__ == "__main__":
    print(f"notes: the schema is at version {migrate(os.environ['DATABASE_URL'])}")
