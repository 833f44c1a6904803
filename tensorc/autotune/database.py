"""The tuning database: every measured configuration, in one SQLite file, shared by processes.

A tuning run is long and often parallel (several tuners, or measurement workers, appending to the
same file), and its results must outlive it, so records go to SQLite (stdlib ``sqlite3``) in WAL
mode: readers never block writers, and a writer that finds the file locked waits (``timeout``)
instead of failing. Each process and thread gets its own connection, opened on first use;
connections are never carried across ``fork`` (SQLite forbids it), and a pickled database
reopens by path in the receiving process.

A record is filed under three keys, because a configuration's speed is only meaningful for the
same workload, on the same machine, compiled by the same compiler:

* ``task_key`` -- the task's identity (template name + arguments), from ``Task.key``;
* ``target_key`` -- ``target_key(task.target)``: the target resolved against this host, CPU name
  and the full sorted LLVM feature list included, so records from an AVX-512 box are never
  taken for an AVX2 box's;
* ``version`` -- the tensorc version that measured it.

``best`` considers records of every tensorc version (a schedule choice rarely stops being good
when the compiler changes, and re-tuning after each upgrade is costly); at equal median cost the
current version's record wins, then the newest. Pass ``version=`` to restrict it to one. A
configuration measured several times ranks by the median of all its costs (``ranked``).

JSON-lines interchange (``export_jsonl`` / ``import_jsonl``), one record per line::

    {"format": "tensorc-tuning-record/1", "task_key": "matmul[512,512,512]",
     "task_name": "matmul", "task_args": [512, 512, 512],
     "target_key": "llvm -mcpu=znver3 -mattr=+avx,+avx2,...", "version": "0.1.0",
     "config": {"tile_i": [-1, 8], ...}, "config_index": 1234, "costs": [0.0012, 0.0011],
     "error_no": 0, "error_msg": "", "flop": 268435456.0, "timestamp": 1718000000.5}

Every field is required and no other is allowed; ``config`` is the ``ConfigEntity.to_dict()``
object (opaque here), ``costs`` are seconds, ``error_no`` is a ``MeasureErrorNo`` (0 = success),
``config_index`` may be null. Mean and median cost are derived from ``costs``, not stored.
Importing skips records identical to one already present, so re-importing a file is harmless.
"""
import functools
import hashlib
import json
import math
import os
import sqlite3
import statistics
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

from .. import __version__
from ..codegen import target as _target

FORMAT = "tensorc-tuning-record/1"

#: ``PRAGMA application_id`` of a tensorc tuning database ("TCTU"): tells our files from other
#: SQLite files, and ``user_version`` is the schema version below.
_APPLICATION_ID = 0x54435455
_SCHEMA_VERSION = 1

_COLUMNS = ("task_key", "task_name", "task_args", "target_key", "version", "config",
            "config_index", "costs", "error_no", "error_msg", "flop", "timestamp")
_JSON_COLUMNS = ("task_args", "config", "costs")

_SCHEMA = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    task_key TEXT NOT NULL,
    task_name TEXT NOT NULL,
    task_args TEXT NOT NULL,
    target_key TEXT NOT NULL,
    version TEXT NOT NULL,
    config TEXT NOT NULL,
    config_index INTEGER,
    costs TEXT NOT NULL,
    mean_cost REAL,
    median_cost REAL,
    error_no INTEGER NOT NULL,
    error_msg TEXT NOT NULL,
    flop REAL NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX records_task_target ON records (task_key, target_key, median_cost);
"""

_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM records"

# Connections inherited through fork: closing them in the child could disturb the parent's
# locks, so they are kept referenced (never closed) for the child's lifetime.
_FORK_ORPHANS = []


def _rollback(conn):
    # SQLite rolls back by itself after some errors (disk full, I/O); a second ROLLBACK would
    # then fail and hide the original error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def pooled(records):
    """Successful ``records`` (in measuring order) pooled per configuration and version, fastest
    first: each the newest record of its configuration with ``costs`` = all of theirs (see
    ``TuningDatabase.ranked``)."""
    groups = {}
    for rec in records:
        if rec.ok and rec.costs:
            key = (json.dumps(rec.config, sort_keys=True), rec.version)
            groups.setdefault(key, []).append(rec)
    out = [recs[-1] if len(recs) == 1 else
           replace(recs[-1], costs=tuple(c for r in recs for c in r.costs))
           for recs in groups.values()]
    return sorted(out, key=lambda r: (r.median_cost, r.version != __version__, -r.timestamp))


class TuningDatabaseError(Exception):
    """The file cannot be used as a tuning database (not SQLite, another program's, corrupt,
    newer schema, unreadable) or a JSON-lines file is malformed. The message names the path."""


@functools.lru_cache(maxsize=256)
def target_key(target="llvm"):
    """The canonical key of a target string (or ``Target``): resolved against this host, with
    CPU name and the sorted, de-duplicated feature list. Keys are target strings themselves and
    ``target_key(target_key(t)) == target_key(t)``, so functions taking a target take a key too."""
    if str(target).split()[:1] in (["cuda"], ["cuda-emu"]):
        from .device_limits import cuda_target_key
        return cuda_target_key(target)
    t = _target.parse(target)
    return str(replace(t, features=tuple(sorted(set(t.features)))))


def _json_copy(value, what):
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as e:
        raise ValueError(f"tuning record {what} is not JSON-serializable: {e}") from None


@dataclass
class Record:
    """One measurement of one configuration (a row of the database, a line of JSON-lines).

    Fields are normalized on construction (``task_args`` and ``costs`` to tuples, ``config`` to
    plain JSON data), so a record equals itself after a trip through the database or a file."""
    task_key: str
    task_name: str
    task_args: tuple[Any, ...]
    target_key: str
    version: str
    config: dict[str, Any]
    config_index: int | None
    costs: tuple[float, ...]
    error_no: int
    error_msg: str
    flop: float
    timestamp: float

    def __post_init__(self):
        for name in ("task_key", "task_name", "target_key", "version", "error_msg"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"tuning record {name} must be a str, got "
                                f"{type(getattr(self, name)).__name__}")
        for name in ("task_args", "costs"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise TypeError(f"tuning record for {self.task_key}: {name} must be a list, got "
                                f"{type(getattr(self, name)).__name__}")
        if not isinstance(self.config, dict):
            raise TypeError(f"tuning record for {self.task_key}: config must be a dict "
                            f"(ConfigEntity.to_dict()), got {type(self.config).__name__}")
        self.task_args = tuple(_json_copy(list(self.task_args), f"for {self.task_key}: task_args"))
        self.config = _json_copy(self.config, f"for {self.task_key}: config")
        self.config_index = None if self.config_index is None else int(self.config_index)
        self.costs = tuple(float(c) for c in self.costs)
        self.error_no = int(self.error_no)
        self.flop = float(self.flop)
        self.timestamp = float(self.timestamp)

    @property
    def ok(self):
        return self.error_no == 0

    @property
    def mean_cost(self):
        """Mean of ``costs`` in seconds; None without costs."""
        return statistics.fmean(self.costs) if self.costs else None

    @property
    def median_cost(self):
        """Median of ``costs`` in seconds (the ranking cost); None without costs."""
        return statistics.median(self.costs) if self.costs else None

    @property
    def gflops(self):
        """Throughput at the median cost, or 0.0 for a failed or unmeasured record."""
        median = self.median_cost
        if not self.ok or not median or not math.isfinite(median):
            return 0.0
        return self.flop / median / 1e9

    def to_json_dict(self):
        """The JSON-lines object: every field plus ``"format"``."""
        d = asdict(self)
        d["task_args"] = list(self.task_args)
        d["costs"] = list(self.costs)
        return {"format": FORMAT, **d}

    @classmethod
    def from_json_dict(cls, d):
        """Inverse of ``to_json_dict``; ValueError on another format or missing/unknown fields,
        TypeError on a non-object."""
        if not isinstance(d, dict):
            raise TypeError(f"expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ValueError(f"format {d.get('format')!r} is not {FORMAT!r}")
        names = {f.name for f in fields(cls)}
        given = set(d) - {"format"}
        if given != names:
            missing, unknown = sorted(names - given), sorted(given - names)
            raise ValueError("; ".join(filter(None, [
                missing and f"missing fields {', '.join(missing)}",
                unknown and f"unknown fields {', '.join(unknown)}"])))
        return cls(**{name: d[name] for name in names})

    def _digest(self):
        """Content hash: two records with equal fields are the same record."""
        text = json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _row(self):
        values = []
        for name in _COLUMNS:
            value = getattr(self, name)
            values.append(json.dumps(list(value) if isinstance(value, tuple) else value)
                          if name in _JSON_COLUMNS else value)
        median = self.median_cost
        # NaN would become NULL in SQLite anyway; say so explicitly.
        median = None if median is None or math.isnan(median) else median
        mean = self.mean_cost
        mean = None if mean is None or math.isnan(mean) else mean
        return (self._digest(), *values, mean, median)

    @classmethod
    def _from_row(cls, row):
        values = {name: json.loads(v) if name in _JSON_COLUMNS else v
                  for name, v in zip(_COLUMNS, row)}
        return cls(**values)


class TaskSummary(NamedTuple):
    """One (task, target) of the database: how many records, and the best one (None if every
    measurement failed)."""
    task_key: str
    task_name: str
    target_key: str
    count: int
    best: Record | None


class TuningDatabase:
    """A tuning database file (created when missing). Usable as a context manager; ``close()``
    closes this process's connections, and a later call simply opens a new one."""

    def __init__(self, path, timeout=60.0):
        path = os.fspath(path)
        if path == ":memory:" or not path:
            raise ValueError("TuningDatabase needs a file path: each thread and process opens "
                             "its own connection, so an in-memory database would not be shared")
        self.path = path
        self.timeout = float(timeout)
        self._reset()
        self._connection()  # fail now, naming the path, if the file is unusable

    def _reset(self):
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open = []

    def __getstate__(self):
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state):
        self.__init__(state["path"], state["timeout"])

    def __repr__(self):
        return f"TuningDatabase({self.path!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the connections this process opened (call it when no other thread is using the
        database)."""
        if self._pid != os.getpid():
            _FORK_ORPHANS.extend(self._open)
            self._reset()
            return
        with self._lock:
            opened, self._open, self._local = self._open, [], threading.local()
        for conn in opened:
            conn.close()

    # --- connections
    def _connection(self):
        if self._pid != os.getpid():
            _FORK_ORPHANS.extend(self._open)
            self._reset()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._open.append(conn)
        return conn

    def _connect(self):
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as e:
            raise TuningDatabaseError(f"tuning database {self.path}: cannot open ({e})") from e
        try:
            self._prepare(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise TuningDatabaseError(f"tuning database {self.path}: {e}") from e
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn):
        self._enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")  # two processes creating the file: one creates, one waits
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id == 0 and tables == 0:
                for statement in _SCHEMA.split(";"):  # not executescript: it would COMMIT
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            elif app_id != _APPLICATION_ID:
                raise TuningDatabaseError(f"tuning database {self.path}: an SQLite database, but "
                                          "not a tensorc tuning database (another program's?)")
            elif version > _SCHEMA_VERSION:
                raise TuningDatabaseError(
                    f"tuning database {self.path}: schema version {version} was written by a "
                    f"newer tensorc; this one ({__version__}) reads version {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _enable_wal(self, conn):
        """Switch the file to WAL, waiting up to ``timeout`` for the lock it needs: SQLite
        answers "database is locked" at once, without its busy wait, while another process is
        switching or creating the same file (two tuners started together did this)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _query(self, sql, params=()):
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise TuningDatabaseError(f"tuning database {self.path}: {e}") from e

    def _insert(self, records):
        """Insert in one transaction; returns how many were new (not exact duplicates)."""
        placeholders = ", ".join("?" * (len(_COLUMNS) + 3))
        sql = (f"INSERT OR IGNORE INTO records (digest, {', '.join(_COLUMNS)}, mean_cost, "
               f"median_cost) VALUES ({placeholders})")
        rows = [r._row() for r in records]
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                added = sum(conn.execute(sql, row).rowcount for row in rows)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.DatabaseError as e:
            raise TuningDatabaseError(f"tuning database {self.path}: {e}") from e
        return added

    # --- writing
    def add(self, record):
        """Store one Record; False if an identical record was already there."""
        return self._insert([record]) == 1

    def add_result(self, task, config, result, index=None):
        """Store one measurement and return its Record. ``task`` has ``key``, ``name``,
        ``args``, ``target`` and ``flop``; ``config`` is ``ConfigEntity.to_dict()``; ``result``
        has ``costs``, ``error_no``, ``error_msg`` and ``timestamp`` (a ``MeasureResult``)."""
        record = Record(task_key=task.key, task_name=task.name, task_args=task.args,
                        target_key=target_key(task.target), version=__version__, config=config,
                        config_index=index, costs=result.costs, error_no=result.error_no,
                        error_msg=result.error_msg, flop=task.flop, timestamp=result.timestamp)
        self.add(record)
        return record

    # --- reading
    def ranked(self, task_key, target="llvm", version=None):
        """The task's configurations, fastest first, each as one record pooling the costs of
        every successful measurement of it (by one tensorc version): the newest record with
        ``costs`` = all of them, in measuring order. ``measurements`` gives the count.

        Pooling is what makes re-measuring a configuration count: a candidate measured once
        during a search and once more in verification ranks by the median of both, so a
        lucky first measurement does not stay its cost.
        """
        sql = f"{_SELECT} WHERE task_key = ? AND target_key = ? AND error_no = 0 " \
              "AND median_cost IS NOT NULL"
        params = [task_key, target_key(target)]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        return pooled([Record._from_row(row) for row in self._query(sql + " ORDER BY id", params)])

    def best(self, task_key, target="llvm", version=None):
        """The configuration with the lowest median cost for ``task_key`` on ``target`` (a
        target string, ``Target`` or target key; default: this host) as a pooled record (see
        ``ranked``), or None. ``version=None`` considers every tensorc version (see the
        module docstring)."""
        ranked = self.ranked(task_key, target, version)
        return ranked[0] if ranked else None

    def top_k(self, task_key, k, target="llvm", version=None):
        """The ``k`` fastest distinct configurations (pooled records), fastest first."""
        seen, out = set(), []
        for rec in self.ranked(task_key, target, version):
            config = json.dumps(rec.config, sort_keys=True)
            if config not in seen:
                seen.add(config)
                out.append(rec)
                if len(out) == k:
                    break
        return out

    def measurements(self, task_key, config, target="llvm"):
        """How many successful records ``config`` (a knob dict) has for the task on target."""
        text = json.dumps(_json_copy(config, "config"), sort_keys=True)
        rows = self._query("SELECT config FROM records WHERE task_key = ? AND target_key = ? "
                           "AND error_no = 0 AND median_cost IS NOT NULL",
                           (task_key, target_key(target)))
        return sum(json.dumps(json.loads(r[0]), sort_keys=True) == text for r in rows)

    def records(self, task_key=None):
        """Every record (of one task if given), in insertion order."""
        if task_key is None:
            rows = self._query(f"{_SELECT} ORDER BY id")
        else:
            rows = self._query(f"{_SELECT} WHERE task_key = ? ORDER BY id", (task_key,))
        return [Record._from_row(row) for row in rows]

    def count(self, task_key=None):
        if task_key is None:
            return self._query("SELECT count(*) FROM records")[0][0]
        return self._query("SELECT count(*) FROM records WHERE task_key = ?", (task_key,))[0][0]

    def tasks(self):
        """A TaskSummary per (task, target) present, sorted by task key then target key."""
        groups = self._query("SELECT task_key, target_key, min(task_name), count(*) FROM records "
                             "GROUP BY task_key, target_key ORDER BY task_key, target_key")
        return [TaskSummary(key, name, target, n, self.best(key, target))
                for key, target, name, n in groups]

    # --- JSON lines
    def export_jsonl(self, path, task_key=None):
        """Write the records (of one task if given) as JSON lines; returns how many."""
        from ..runtime.module import atomic_write
        records = self.records(task_key)
        text = "".join(json.dumps(r.to_json_dict()) + "\n" for r in records)
        atomic_write(os.fspath(path), text.encode())
        return len(records)

    def import_jsonl(self, path):
        """Add the records of a JSON-lines file (all or none); returns how many were new."""
        path = os.fspath(path)
        records = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append(Record.from_json_dict(json.loads(line)))
                except (ValueError, TypeError) as e:
                    raise TuningDatabaseError(f"{path}:{lineno}: not a tuning record: {e}") from e
        return self._insert(records)
