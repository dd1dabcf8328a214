"""One SQLite database shared by many processes: a connection per thread, WAL, atomic writes.

The run store and the worker registry each keep a database of their own through this, so that
neither has to know how the other is laid out. An existing file is opened without the right to
create it (`mode=rw`), so a database deleted while in use is reported, never silently replaced by
an empty one; each connection notices when its file was deleted or replaced. SQLite's errors about
a missing, damaged or full file become LayerlabErrors that name the file.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from pipelines.errors import DiskFullError, LayerlabError, StoreUnavailableError
from pipelines.runs.artifacts import disk_full_message

_checked: set[str] = set()  # databases whose integrity this process has checked
_checked_lock = threading.Lock()
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_UNREADABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_READONLY_DBMOVED")
_NEARLY_FULL_BYTES = 1 << 20


def _disk_full(path: Path) -> bool:
    """Whether the disk holding `path` is (nearly) full: SQLite then fails in ways that name no space."""
    try:
        return shutil.disk_usage(path.parent).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file `path` names now (device, inode), or None if there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class _Cursor(sqlite3.Cursor):
    """A cursor whose errors about the file itself (raised by a statement or while stepping through
    its rows) are explained by the connection's SQLiteDatabase."""

    def _explained(self, call, *args):
        try:
            return call(*args)
        except sqlite3.Error as exc:
            better = self.connection.explain(exc)
            if better is None:
                raise
            raise better from exc

    def execute(self, *args):
        return self._explained(super().execute, *args)

    def executemany(self, *args):
        return self._explained(super().executemany, *args)

    def fetchone(self):
        return self._explained(super().fetchone)

    def fetchmany(self, *args):
        return self._explained(super().fetchmany, *args)

    def fetchall(self):
        return self._explained(super().fetchall)

    def __next__(self):
        return self._explained(super().__next__)


class _Connection(sqlite3.Connection):
    """A connection whose statements run on explaining cursors."""

    explain: Callable[[sqlite3.Error], Exception | None]

    def cursor(self, factory=None):
        return super().cursor(factory or _Cursor)

    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, parameters, /):
        return self.cursor().executemany(sql, parameters)


class SQLiteDatabase:
    """`path` in WAL mode (readers never wait for writers), with `schema` applied at `version`.

    Each thread of each process gets its own connection: sqlite3 connections must not be shared
    across threads or inherited across fork. `write()` runs a BEGIN IMMEDIATE transaction, which
    takes the database's write lock up front, so a read-then-write is atomic across processes.
    A missing file is created unless `refuse_create()` returns the reason not to; `recovery` is
    appended to every message about a missing or damaged file. The first open in a process runs
    SQLite's quick_check. A file at an older version is migrated: `migrations[n]` holds the
    statements that take version n - 1 to n, all run in one transaction.
    """

    def __init__(self, path: Path, schema: str, version: int, *, what: str,
                 refuse_create: Callable[[], str | None] | None = None, recovery: str = "",
                 migrations: Mapping[int, str] | None = None) -> None:
        self.path = path
        self.what = what
        self._schema, self._version = schema, version
        self._migrations = dict(migrations or {})
        self._refuse_create = refuse_create or (lambda: None)
        self._recovery = recovery
        self._local = threading.local()
        try:
            self.connection()
        except BaseException:
            self.close()
            raise

    def connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) == os.getpid():
            if _identity(self.path) == local.identity and not (local.read_only and not _disk_full(self.path)):
                return local.connection
            # The file was deleted or replaced (rebuilt): never keep writing to the old one. Or a
            # read-only connection opened on a full disk, and there is space again.
            self.close()
        # New thread, or a forked child holding its parent's connection: never reuse that one.
        self._open(local)
        return local.connection

    def _open(self, local: threading.local) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = None
        # A 0-byte file is no database either: SQLite would quietly make an empty one of it.
        if not size and (reason := self._refuse_create()):
            raise StoreUnavailableError(f"{reason} {self._recovery}".strip())
        uri = self.path.resolve().as_uri()
        try:
            self._use(local, f"{uri}?mode={'rwc' if size is None else 'rw'}", read_only=False)
        except DiskFullError:
            wal = Path(f"{self.path}-wal")
            if not size or (wal.exists() and wal.stat().st_size > 0):
                raise
            # A full disk has no room for SQLite's shared-memory file, and no other connection has
            # made one: nothing is writing, so the file alone is the whole store. Read it as it is.
            self._use(local, f"{uri}?mode=ro&immutable=1", read_only=True)

    def _use(self, local: threading.local, uri: str, *, read_only: bool) -> None:
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None, factory=_Connection)
        except sqlite3.Error as exc:
            raise (self.explain(exc) or exc) from exc
        connection.explain = self.explain
        connection.row_factory = sqlite3.Row
        local.connection, local.pid, local.identity = connection, os.getpid(), _identity(self.path)
        local.read_only = read_only
        try:
            connection.execute("PRAGMA synchronous=NORMAL")
            if read_only:
                self._check_version(connection)
            else:
                self._prepare(connection)
        except BaseException:
            self.close()
            raise

    def explain(self, error: sqlite3.Error) -> Exception | None:
        """A LayerlabError naming the file for an error about the file itself; None for the rest
        (a busy database, a constraint, a bug in a statement), which are raised as they are."""
        if isinstance(error, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
            return None
        name = getattr(error, "sqlite_errorname", "") or ""
        text = str(error)
        if name == "SQLITE_FULL" or "database or disk is full" in text or (
                name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")) and _disk_full(self.path)):
            return DiskFullError(f"{disk_full_message(self.path.parent, 'try again')} (the {self.what} "
                                 f"{self.path} cannot be written until there is space: {text})")
        if name.startswith(_DAMAGED) or "malformed" in text or "not a database" in text:
            problem = f"is damaged ({text})"
        elif name.startswith(_UNREADABLE) or "unable to open" in text:
            problem = f"cannot be opened or read ({text}); it may have been deleted while in use"
        elif "no such table" in text:
            problem = f"has lost its tables ({text}): it was deleted or replaced while in use"
        else:
            return None
        return StoreUnavailableError(f"The {self.what} {self.path} {problem}. {self._recovery}".strip())

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

    def integrity_problem(self, pragma: str = "integrity_check") -> str | None:
        """What SQLite's integrity_check (or quick_check) finds wrong with the file, or None."""
        rows = self.connection().execute(f"PRAGMA {pragma}").fetchall()
        found = [row[0] for row in rows if row[0] != "ok"]
        return "; ".join(found[:5]) or None

    def _check_version(self, connection: sqlite3.Connection) -> bool:
        """True if the schema is at this version; raises for a newer one (False: to be written)."""
        found = connection.execute("PRAGMA user_version").fetchone()[0]
        if found > self._version:
            raise LayerlabError(
                f"{self.path} has schema version {found}, newer than this Layerlab "
                f"understands ({self._version}). Upgrade Layerlab or use another home."
            )
        return found == self._version

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """WAL mode, an integrity check once per process, and the schema (written only if missing,
        so that opening works on a full disk)."""
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise LayerlabError(
                f"The {self.what} needs SQLite's WAL mode, which {self.path} does not support "
                f"(journal_mode={mode!r}). Put LAYERLAB_HOME on a local disk."
            )
        key = str(self.path.resolve())
        with _checked_lock:
            first = key not in _checked
        if first:
            problem = self.integrity_problem("quick_check")
            if problem:
                raise StoreUnavailableError(
                    f"The {self.what} {self.path} is damaged (quick_check: {problem}). {self._recovery}".strip())
            with _checked_lock:
                _checked.add(key)
        if self._check_version(connection):
            return
        with self.write() as db:
            if self._check_version(db):
                return  # another process wrote it meanwhile
            found = db.execute("PRAGMA user_version").fetchone()[0]
            steps = [self._schema] if found == 0 else [self._migration(version)
                                                       for version in range(found + 1, self._version + 1)]
            for script in steps:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {self._version}")

    def _migration(self, version: int) -> str:
        if version not in self._migrations:
            raise LayerlabError(f"{self.path} has schema version {version - 1}, which this Layerlab cannot "
                                f"migrate to version {self._version}. Use another home.")
        return self._migrations[version]
