"""One SQLite database shared by many processes: a connection per thread, WAL, atomic writes.

The run store and the worker registry each keep a database of their own through this, so that
neither has to know how the other is laid out.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import LayerlabError


class SQLiteDatabase:
    """`path` in WAL mode (readers never wait for writers), with `schema` applied at `version`.

    Each thread of each process gets its own connection: sqlite3 connections must not be shared
    across threads or inherited across fork. `write()` runs a BEGIN IMMEDIATE transaction, which
    takes the database's write lock up front, so a read-then-write is atomic across processes.
    """

    def __init__(self, path: Path, schema: str, version: int, *, what: str) -> None:
        self.path = path
        self.what = what
        self._local = threading.local()
        try:
            self._init_schema(schema, version)
        except BaseException:
            self.close()
            raise

    def connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # New thread, or a forked child holding its parent's connection: never reuse that one.
            local.connection = self._connect()
            local.pid = os.getpid()
        return local.connection

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local.__dict__.clear()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            if connection.in_transaction:  # SQLite may already have rolled back on some errors.
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _init_schema(self, schema: str, version: int) -> None:
        connection = self.connection()
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise LayerlabError(
                f"The {self.what} needs SQLite's WAL mode, which {self.path} does not support "
                f"(journal_mode={mode!r}). Put LAYERLAB_HOME on a local disk."
            )
        with self.write() as db:
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > version:
                raise LayerlabError(
                    f"{self.path} has schema version {found}, newer than this Layerlab "
                    f"understands ({version}). Upgrade Layerlab or use another home."
                )
            for statement in schema.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
