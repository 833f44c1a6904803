"""Tuning tasks: a template (schedule code with knobs) applied to one workload on one target.

A task is what the tuner searches and what the database files results under, so its identity
(``key``) is plain data: the template's name and its JSON-encoded arguments. Everything else --
the space, the argument tensors, the flop count, the reference outputs that every candidate
must reproduce -- is derived from running the template, once, in space-defining mode.
"""
import importlib
import json
import logging
import threading

import numpy as np

from ..ir import expr as E
from ..te.tensor import ComputeOp, PlaceholderOp
from .space import ConfigEntity, ConfigSpace, SpaceError, using_config

log = logging.getLogger("tensorc.autotune")

#: name -> Template, filled by the ``@template`` decorator.
TEMPLATES = {}


class Template:
    """A registered template function ``f(*args) -> (schedule, tensors)``.

    Called directly (outside tuning), it schedules with the best config of the active
    ``apply_history_best`` context, or the space's first point when none is recorded.
    """

    def __init__(self, name, func):
        self.name, self.func = name, func
        self.module = func.__module__
        self.__doc__ = func.__doc__

    def __call__(self, *args):
        from .space import _active
        if getattr(_active, "cfg", None) is not None:
            return self.func(*args)
        return create_task(self.name, args).instantiate_best()

    def __repr__(self):
        return f"Template({self.name!r} from {self.module})"


def template(name):
    """Register a template under ``name`` (AutoTVM's ``@autotvm.template``)."""
    def register(func):
        if name in TEMPLATES and TEMPLATES[name].func.__qualname__ != func.__qualname__:
            raise SpaceError(f"template {name!r} is already registered "
                             f"({TEMPLATES[name].module}.{TEMPLATES[name].func.__qualname__})")
        TEMPLATES[name] = Template(name, func)
        return TEMPLATES[name]
    return register


def _json_args(name, args):
    try:
        return json.dumps(list(args), sort_keys=True, separators=(",", ":"))
    except TypeError as e:
        raise SpaceError(f"task {name!r}: template arguments must be JSON values "
                         f"(ints, floats, strings, lists), got {args!r}") from e


def _check_target(target):
    kind = str(target).split()[0] if target else ""
    if kind != "llvm":
        raise ValueError(f"autotune: unknown target {target!r}; available: 'llvm'")
    return str(target)


class Task:
    """A template on concrete arguments and a target: the unit of tuning."""

    def __init__(self, name, args, target="llvm", func=None, key=None, module=None):
        self.name = name
        self.args = tuple(args)
        self.target = _check_target(target)
        if func is None:
            if name not in TEMPLATES:
                raise SpaceError(f"no template named {name!r}; registered: {sorted(TEMPLATES)}")
            func, module = TEMPLATES[name].func, TEMPLATES[name].module
        self.func, self.module = func, module
        self.key = key or f"{name}{_json_args(name, self.args)}"
        self._lock = threading.Lock()
        self._space = None
        self._reference = {}

    # --- the space, defined by running the template once
    def _define(self):
        with self._lock:
            if self._space is None:
                space = ConfigSpace()
                with using_config(space):
                    s, tensors = self.func(*self.args)
                if not any(isinstance(t.op, ComputeOp) for t in tensors):
                    raise SpaceError(f"task {self.name!r}: the template returned no computed "
                                     "tensor among its arguments")
                self._tensors = list(tensors)
                self._space = space
        return self._space

    @property
    def config_space(self):
        return self._define()

    @property
    def tensors(self):
        """The argument tensors of the space-defining run (inputs first, outputs last)."""
        self._define()
        return self._tensors

    @property
    def outputs(self):
        return [t for t in self.tensors if not isinstance(t.op, PlaceholderOp)]

    @property
    def inputs(self):
        return [t for t in self.tensors if isinstance(t.op, PlaceholderOp)]

    @property
    def num_outputs(self):
        return len(self.outputs)

    def tensors_info(self):
        return [(tuple(t.shape), t.dtype) for t in self.tensors]

    @property
    def flop(self):
        """Floating-point work of one run: the template's ``add_flop`` total, else counted from
        the TE program (every arithmetic node once per point, a multiply-add as two)."""
        space = self.config_space
        return space.flop or compute_flop(self.outputs)

    # --- points of the space
    def config(self, config):
        """A ``ConfigEntity`` of this task's space from an entity, an index or a knob dict."""
        space = self.config_space
        if isinstance(config, ConfigEntity):
            if config.space is space:
                return config
            return ConfigEntity.from_dict(space, config.to_dict())
        if isinstance(config, dict):
            return ConfigEntity.from_dict(space, config)
        return space.get(config)

    def instantiate(self, config):
        """(schedule, argument tensors) for one point of the space."""
        cfg = self.config(config)
        with using_config(cfg):
            return self.func(*self.args)

    def lower(self, config, name=None):
        from ..driver import lower
        s, tensors = self.instantiate(config)
        return lower(s, tensors, name=name or _identifier(self.name))

    def build(self, config, name=None):
        from ..driver import build
        s, tensors = self.instantiate(config)
        return build(s, tensors, target=self.target, name=name or _identifier(self.name))

    def best_config(self):
        """The best recorded config of the active ``apply_history_best`` context, or None."""
        from .dispatch import lookup_best
        rec = lookup_best(self.key, self.target)
        if rec is None:
            return None
        try:
            return self.config(rec.config)
        except SpaceError as e:
            log.warning("task %s: the recorded best config no longer fits the space (%s); "
                        "ignoring it", self.key, e)
            return None

    def baseline_config(self):
        """The point every measured candidate is timed against (``MeasureOption.paired``): the
        space's first point, which the built-in templates make their default schedule."""
        return self.config_space.get(0)

    def instantiate_best(self):
        """(schedule, tensors) with the best recorded config, else the space's first point."""
        from .dispatch import warn_missing
        cfg = self.best_config()
        if cfg is None:
            warn_missing(self.key)
            cfg = self.config_space.get(0)
        return self.instantiate(cfg)

    # --- what every candidate must reproduce
    def reference(self, seed=0):
        """(inputs, expected outputs): seeded random inputs and the outputs the numpy oracle
        (``te.evaluate``, independent of any schedule) computes from them."""
        if seed not in self._reference:
            from ..te.oracle import evaluate
            rng = np.random.default_rng(seed)
            inputs = [random_array(t.shape, t.dtype, rng) for t in self.inputs]
            outs = evaluate(self.outputs, dict(zip(self.inputs, inputs)))
            self._reference[seed] = (inputs, outs)
        return self._reference[seed]

    # --- identity
    def to_json(self):
        return {"name": self.name, "args": list(self.args), "target": self.target,
                "module": self.module}

    @classmethod
    def from_json(cls, d):
        return create_task(d["name"], d["args"], d.get("target", "llvm"), d.get("module"))

    def __reduce__(self):
        if self.name not in TEMPLATES or TEMPLATES[self.name].func is not self.func:
            raise TypeError(f"task {self.key}: only tasks of registered templates can be "
                            "pickled (build candidates where the task was made)")
        return (create_task, (self.name, self.args, self.target, self.module))

    def __repr__(self):
        return f"Task({self.key}, target={self.target!r})"


def create_task(name, args=(), target="llvm", module=None):
    """The task of template ``name`` on ``args`` (AutoTVM's ``autotvm.task.create``).
    ``module`` is imported first when the template is not registered yet (a worker process)."""
    if name not in TEMPLATES and module:
        importlib.import_module(module)
    if name not in TEMPLATES:
        importlib.import_module("tensorc.ops.templates")  # the built-in ops' templates
    return Task(name, args, target)


def random_array(shape, dtype, rng):
    """Test data that exposes mistakes: no zeros for floats, small ranges for integers."""
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(0, 4, size=shape).astype(dtype)
    x = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return x.astype(dtype)


_ARITH = (E.Add, E.Sub, E.Mul, E.Div, E.Min, E.Max)


def compute_flop(outputs):
    """Arithmetic operations per run of the compute ops that ``outputs`` depend on: each op's
    value arithmetic (``value_arith``) once per point, a multiply-add reduction as two."""
    seen, total, stack = set(), 0, [t.op for t in outputs]
    while stack:
        op = stack.pop()
        if op in seen or not isinstance(op, ComputeOp):
            continue
        seen.add(op)
        points = int(np.prod([int(iv.dom.extent.value) for iv in op.axis + op.reduce_axis]))
        total += points * value_arith(op.body)
        stack.extend(t.op for t in op.input_tensors)
    return float(total)


def value_arith(e):
    """Arithmetic nodes of an expression's value -- not of its indices, padding conditions or
    reduction predicates, which are address work (a copy, pack or pad counts zero)."""
    if isinstance(e, (list, tuple)):
        return sum(value_arith(x) for x in e)
    t = type(e)
    if t is E.ProducerLoad or t is E.Load or not isinstance(e, E.Expr):
        return 0
    if t is E.Select:
        return value_arith(e.true_value) + value_arith(e.false_value)
    if t is E.Reduce:
        return 1 + value_arith(e.source)
    if t is E.Call:
        return 1 + value_arith(e.args)
    if isinstance(e, E.BinaryOp):
        return (t in _ARITH) + value_arith(e.a) + value_arith(e.b)
    if t is E.Cast or t is E.Broadcast:
        return value_arith(e.value)
    if t is E.Let:
        return value_arith(e.value) + value_arith(e.body)
    return 0


def _identifier(name):
    ident = "".join(c if c.isalnum() else "_" for c in name)
    return ident if ident and not ident[0].isdigit() else f"t_{ident}"


__all__ = ["TEMPLATES", "Template", "template", "Task", "create_task", "random_array",
           "compute_flop"]
