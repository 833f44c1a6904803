"""Which tuned configuration a build uses: the records of the active ``apply_history_best``.

    with autotune.apply_history_best("tune.db"):
        f = tc.build(*task.instantiate_best(), target="llvm")

Template code asks ``lookup_best(task.key, task.target)`` deep inside a build, far from where
the user chose a database, so the choice travels as a context rather than an argument. Contexts
form a per-thread stack (a build in another thread does not see this thread's database): the
innermost context that has a record for the task answers, and outer ones are asked in turn, so
a small hand-tuned file can override a few tasks of a large shared one.

Each context caches its answers, including "no record", per (task, target): a graph compile asks
for the same tasks many times. Records added to the database while a context is active are
therefore not seen by that context; open a new one to see them.

When nothing is found the caller falls back to a default configuration and calls
``warn_missing`` -- one warning per task per process, on the ``tensorc.autotune`` logger.
"""
import logging
import threading

from .database import TuningDatabase, target_key

log = logging.getLogger("tensorc.autotune")

_local = threading.local()
_warned = set()
_warned_lock = threading.Lock()


def _stack():
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class ApplyHistoryBest:
    """Answer best-config queries from a TuningDatabase (or a path, opened here and closed on
    exiting the ``with`` block). Usable without ``with`` through ``lookup``."""

    def __init__(self, db):
        if isinstance(db, TuningDatabase):
            self.db, self._owns_db = db, False
        else:
            self.db, self._owns_db = TuningDatabase(db), True
        self._cache = {}
        self._cache_lock = threading.Lock()

    def __repr__(self):
        return f"apply_history_best({self.db.path!r})"

    def lookup(self, task_key, target="llvm"):
        """This database's best successful Record for the task on ``target``, or None."""
        key = (task_key, target_key(target))
        with self._cache_lock:
            if key in self._cache:
                return self._cache[key]
        record = self.db.best(task_key, key[1])
        with self._cache_lock:
            return self._cache.setdefault(key, record)

    def __enter__(self):
        _stack().append(self)
        return self

    def __exit__(self, *exc):
        stack = _stack()
        if not stack or stack[-1] is not self:
            raise RuntimeError(f"{self!r} exited out of order (contexts must exit innermost "
                               "first, in the thread that entered them)")
        stack.pop()
        if self._owns_db:
            self.db.close()


def apply_history_best(db):
    """A dispatch context over ``db`` (a TuningDatabase or the path of one)."""
    return ApplyHistoryBest(db)


def current_context():
    """The innermost active context of this thread, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def lookup_best(task_key, target="llvm"):
    """The best Record for the task from this thread's active contexts, innermost first; None
    when no context is active or none has a successful record."""
    for ctx in reversed(_stack()):
        record = ctx.lookup(task_key, target)
        if record is not None:
            return record
    return None


def warn_missing(task_key):
    """Log, once per task per process, that the task runs with its default configuration."""
    with _warned_lock:
        if task_key in _warned:
            return
        _warned.add(task_key)
    log.warning("no tuning record for task %s on this target; using its default configuration "
                "(tune it, or enter apply_history_best with a database that has it)", task_key)
