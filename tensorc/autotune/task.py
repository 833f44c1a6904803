"""Tuning tasks: a template (schedule code with knobs) applied to one workload on one target.

A task is what the tuner searches and what the database files results under, so its identity
(``key``) is plain data: the template's name and its JSON-encoded arguments. Everything else --
the space, the argument tensors, the flop count, the reference outputs that every candidate
must reproduce -- is derived from running the template, once, in space-defining mode.

A template name may have one variant per target family (AutoTVM's ``dense.x86`` /
``dense.cuda``): "llvm" for the CPU, "cuda" for "cuda", "cuda -arch=sm_XX" and "cuda-emu"
(which runs the same CUDA C on the CPU, so it tunes the GPU variant). A task takes the
variant of its target's family.
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

#: name -> Template of the CPU ("llvm") variants, filled by the ``@template`` decorator.
TEMPLATES = {}
#: target family -> {name -> Template}.
VARIANTS = {"llvm": TEMPLATES, "cuda": {}}
#: target kind -> the family whose templates it runs.
FAMILIES = {"llvm": "llvm", "cuda": "cuda", "cuda-emu": "cuda"}


class Template:
    """A registered template function ``f(*args) -> (schedule, tensors)``.

    Called directly (outside tuning), it schedules with the best config of the active
    ``apply_history_best`` context, or the space's first point when none is recorded.
    """

    def __init__(self, name, func, target="llvm"):
        self.name, self.func, self.target = name, func, target
        self.module = func.__module__
        self.__doc__ = func.__doc__

    def __call__(self, *args):
        from .space import _active
        if getattr(_active, "cfg", None) is not None:
            return self.func(*args)
        return create_task(self.name, args, self.target).instantiate_best()

    def __repr__(self):
        return f"Template({self.name!r} for {self.target} from {self.module})"


def template(name, target="llvm"):
    """Register a template under ``name`` for the target family of ``target`` ("llvm" or
    "cuda"; AutoTVM's ``@autotvm.template``)."""
    family = target_family(target)
    registry = VARIANTS[family]

    def register(func):
        if name in registry and registry[name].func.__qualname__ != func.__qualname__:
            raise SpaceError(f"template {name!r} is already registered for {family} "
                             f"({registry[name].module}.{registry[name].func.__qualname__})")
        registry[name] = Template(name, func, family)
        return registry[name]
    return register


def target_family(target):
    """ "llvm" or "cuda": whose templates a target runs."""
    kind = (str(target).split() or [""])[0] if target else ""
    if kind not in FAMILIES:
        raise ValueError(f"autotune: unknown target {target!r}; available: "
                         f"{', '.join(map(repr, FAMILIES))} (cuda takes -arch=sm_XX)")
    return FAMILIES[kind]


def _json_args(name, args):
    try:
        return json.dumps(list(args), sort_keys=True, separators=(",", ":"))
    except TypeError as e:
        raise SpaceError(f"task {name!r}: template arguments must be JSON values "
                         f"(ints, floats, strings, lists), got {args!r}") from e


def _check_target(target):
    if target_family(target) == "cuda":
        from .device_limits import cuda_arch
        cuda_arch(target)  # a bad -arch fails here, not in every build
    return str(target)


def _variant(name, target):
    """The template ``name`` registered for ``target``'s family."""
    family = target_family(target)
    if name in VARIANTS[family]:
        return VARIANTS[family][name]
    others = [f for f, registry in VARIANTS.items() if name in registry]
    if others:
        raise ValueError(f"template {name!r} has no variant for target {target!r} (a "
                         f"{family} target); it has: {', '.join(others)}")
    raise SpaceError(f"no template named {name!r}; registered: {sorted(VARIANTS[family])} "
                     f"for {family}")


class Task:
    """A template on concrete arguments and a target: the unit of tuning."""

    def __init__(self, name, args, target="llvm", func=None, key=None, module=None):
        self.name = name
        self.args = tuple(args)
        self.target = _check_target(target)
        if func is None:
            found = _variant(name, self.target)
            func, module = found.func, found.module
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
        """The lowered program; a CUDA task's in the form its code generator takes."""
        from ..driver import lower
        s, tensors = self.instantiate(config)
        gpu = target_family(self.target) == "cuda"
        return lower(s, tensors, name=name or _identifier(self.name),
                     target=self.target.split()[0] if gpu else None)

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
        registry = VARIANTS[target_family(self.target)]
        if self.name not in registry or registry[self.name].func is not self.func:
            raise TypeError(f"task {self.key}: only tasks of registered templates can be "
                            "pickled (build candidates where the task was made)")
        return (create_task, (self.name, self.args, self.target, self.module))

    def __repr__(self):
        return f"Task({self.key}, target={self.target!r})"


def create_task(name, args=(), target="llvm", module=None):
    """The task of template ``name`` on ``args`` for ``target`` (AutoTVM's
    ``autotvm.task.create``), with the template's variant for the target's family. ``module``
    is imported first when the template is not registered yet (a worker process)."""
    registry = VARIANTS[target_family(target)]
    if name not in registry and module:
        importlib.import_module(module)
    if name not in registry:
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


__all__ = ["TEMPLATES", "VARIANTS", "Template", "template", "target_family", "Task",
           "create_task", "random_array", "compute_flop"]
