"""Features of a lowered loop program, the input of the autotuner's cost model.

The cost model ranks candidate schedules of a task (and, for transfer, of similar tasks), so the
features describe what the generated code does, not which template produced it: how many
iterations and operations each innermost statement runs, how its memory accesses stride and
reuse data at each loop level, how wide its vectors are and how much runs in parallel. The
vector has one fixed layout, named by ``FEATURE_NAMES``, so one model scores any program.

Lowering has already expanded unrolled loops and turned vectorized ones into vector lanes, so
both are read back from its result: a statement's vector width is its lanes, and the copies an
unrolled loop leaves (same buffer stored, same enclosing loops) merge into one statement whose
``copies`` is the unroll factor and whose constant index offsets count as one more dimension of
the data it touches.

Counts are scaled by log2(1 + x) so that the tree model's splits see orders of magnitude.
"""
import math

import numpy as np

from ..arith import const_int_bound
from ..ir import dtype as dt
from ..ir import expr as E
from ..ir import stmt as S

TOP_STATEMENTS = 3   # statements described one by one, the ones doing the most work
TOP_BUFFERS = 4      # buffers per statement: the one stored, then the largest ones read
LOOP_SLOTS = 4       # innermost loops of a statement described one by one
# Footprint levels of an access: its vector lanes alone, then with the innermost 1..4 loops,
# then with all enclosing loops; a shallower nest repeats its outermost level.
LEVELS = ("vec", "l1", "l2", "l3", "l4", "all")
CACHES = (("c32k", 32 * 1024), ("c1m", 1024 * 1024))
LINE_BYTES = 64

OP_KINDS = ("f_addsub", "f_mul", "f_div", "f_fma", "f_minmax", "f_cmp", "i_arith", "i_divmod",
            "i_minmax", "i_cmp", "logic", "select", "cast", "call", "load", "idx_arith",
            "idx_divmod")
_OP = {k: i for i, k in enumerate(OP_KINDS)}
_FLOP_KINDS = [_OP[k] for k in ("f_addsub", "f_mul", "f_div", "f_minmax")]
_INT_KINDS = [_OP[k] for k in ("i_arith", "i_divmod", "i_minmax")]
_INDEX_KINDS = [_OP["idx_arith"], _OP["idx_divmod"]]

GLOBAL_NAMES = (
    "n_stores", "n_statements", "n_loops", "max_depth", "n_if", "n_alloc", "alloc_bytes",
    "alloc_max_bytes", "local_bytes", "flops", "calls", "int_ops", "index_ops", "load_elems",
    "store_elems", "unique_bytes", "traffic_c32k", "traffic_c1m", "intensity_c32k",
    "intensity_c1m", "intensity_unique", "par_loops", "par_extent", "par_fraction",
    "par_per_task", "vec_max_lanes", "vec_fraction", "vec_contiguous_fraction",
    "unroll_copies", "unroll_max", "guard_fraction")
STATEMENT_NAMES = (
    ("present", "trip", "work", "lanes", "copies", "depth", "guarded", "accumulate",
     "stores_local", "n_buffers", "par_loops", "par_extent", "par_launches", "per_task_work")
    + OP_KINDS + ("flops", "traffic_c32k", "traffic_c1m", "intensity_c32k", "intensity_c1m")
    + tuple(f"loop{k}_{w}" for k in range(1, LOOP_SLOTS + 1) for w in ("extent", "parallel"))
    + ("outer_trip",))
BUFFER_NAMES = (
    ("present", "read", "write", "local", "itemsize", "patterns", "accesses_per_iter",
     "irregular", "guarded", "vec_stride", "vec_contiguous", "vec_broadcast")
    + tuple(f"stride_l{k}" for k in range(1, LOOP_SLOTS + 1))
    + tuple(f"{w}_{lv}" for lv in LEVELS for w in ("bytes", "lines", "reuse")))
FEATURE_NAMES = tuple(GLOBAL_NAMES) + tuple(
    f"s{i}.{n}" for i in range(TOP_STATEMENTS)
    for n in STATEMENT_NAMES + tuple(f"b{k}.{m}" for k in range(TOP_BUFFERS)
                                     for m in BUFFER_NAMES))
NUM_FEATURES = len(FEATURE_NAMES)
_STATEMENT_SIZE = len(STATEMENT_NAMES) + TOP_BUFFERS * len(BUFFER_NAMES)

_LANE = "lane"  # key of the vector-lane pseudo loop in a coefficient map


def _log(x):
    return math.log2(1.0 + x) if x > 0 else 0.0


class _Loop:
    __slots__ = ("extent", "parallel", "var")

    def __init__(self, var, extent, parallel):
        self.var, self.extent, self.parallel = var, extent, parallel


class _Pattern:
    """Accesses of one buffer with one affine shape; the unrolled copies differ in ``offsets``."""
    __slots__ = ("buffer", "coefs", "count", "guarded", "irregular", "lane_coef", "lanes",
                 "offsets", "read", "write")

    def __init__(self, buffer, coefs, lane_coef, lanes, irregular):
        self.buffer, self.coefs, self.lane_coef = buffer, coefs, lane_coef
        self.lanes, self.irregular = lanes, irregular
        self.offsets = set()
        self.count = 0
        self.read = self.write = self.guarded = False


class _Statement:
    """The stores of one buffer under one loop nest: a statement and its unrolled copies."""
    __slots__ = ("buffer", "copies", "guarded", "inner_vars", "lanes", "loops", "ops",
                 "patterns")

    def __init__(self, loops, lanes, buffer):
        self.loops, self.lanes, self.buffer = loops, lanes, buffer
        self.inner_vars = [id(lp.var) for lp in reversed(loops)]
        self.copies = 0
        self.ops = [0.0] * len(OP_KINDS)
        self.patterns = {}
        self.guarded = False


class _Walker:
    """One pass over the function body collecting statements and whole-program counts."""

    def __init__(self, func):
        self.buffers = {id(p.data): (math.prod(p.shape), dt.itemsize(p.dtype), False)
                        for p in func.params}
        self.statements = {}
        self.loops = []
        self.loop_keys = []  # (var id, extent) of self.loops, the statement key's tail
        self.ranges = {}
        self.guard = 0
        self.lets = {}
        self.lin_memo = {}
        self.n_stores = self.n_loops = self.n_par = self.n_if = self.max_depth = 0
        self.allocs = []

    def stmt(self, s):
        t = type(s)
        if t is S.SeqStmt:
            for x in s.seq:
                self.stmt(x)
        elif t is S.For:
            self.loop(s)
        elif t is S.Store:
            self.store(s)
        elif t is S.IfThenElse:
            self.n_if += 1
            self.guard += 1
            self.stmt(s.then_case)
            if s.else_case is not None:
                self.stmt(s.else_case)
            self.guard -= 1
        elif t is S.Allocate:
            local = s.scope != "global"
            self.buffers[id(s.buffer)] = (s.extent, dt.itemsize(s.dtype), local)
            self.allocs.append((s.extent * dt.itemsize(s.dtype), local))
            self.stmt(s.body)
        elif t is S.LetStmt:
            self.lets[id(s.var)] = s.value
            self.stmt(s.body)
        elif t is S.AttrStmt:
            self.stmt(s.body)

    def _bound(self, e):
        if type(e) is E.IntImm:
            return e.value, e.value
        return const_int_bound(e, dict(self.ranges))

    def loop(self, f):
        lo = self._bound(f.min)[0]
        ext = self._bound(f.extent)[1]
        lo = 0 if math.isinf(lo) else lo
        ext = 1 if math.isinf(ext) else max(int(ext), 0)
        self.n_loops += 1
        self.n_par += f.kind == "parallel"
        if ext == 0:
            return  # the body never runs
        self.loops.append(_Loop(f.loop_var, ext, f.kind == "parallel"))
        self.loop_keys.append((id(f.loop_var), ext))
        self.ranges[f.loop_var] = (lo, lo + ext - 1)
        self.max_depth = max(self.max_depth, len(self.loops))
        self.stmt(f.body)
        self.loops.pop()
        self.loop_keys.pop()
        del self.ranges[f.loop_var]

    def store(self, s):
        self.n_stores += 1
        lanes = dt.lanes(s.value.dtype)
        key = (id(s.buffer), lanes, *self.loop_keys)
        st = self.statements.get(key)
        if st is None:
            st = self.statements[key] = _Statement(tuple(self.loops), lanes, s.buffer)
        st.copies += 1
        st.guarded = st.guarded or self.guard > 0
        loads = []
        seen = set()
        _count(s.value, st.ops, loads, seen, False)
        _count_index(s.index, st.ops, loads, seen)
        self.access(st, s.buffer, s.index, lanes, write=True, guarded=False)
        for ld, guarded in loads:
            self.access(st, ld.buffer, ld.index, dt.lanes(ld.dtype), write=False,
                        guarded=guarded)

    def access(self, st, buffer, index, lanes, write, guarded):
        coefs, const, irregular = self.lin(index)
        loop_coefs = tuple(abs(coefs.get(v, 0.0)) for v in st.inner_vars)
        lane_coef = abs(coefs.get(_LANE, 0.0)) if lanes > 1 else 0.0
        key = (id(buffer), loop_coefs, lane_coef, lanes, irregular)
        p = st.patterns.get(key)
        if p is None:
            p = st.patterns[key] = _Pattern(buffer, loop_coefs, lane_coef, lanes, irregular)
        p.count += 1
        p.offsets.add(const)
        p.write = p.write or write
        p.read = p.read or not write
        p.guarded = p.guarded or guarded

    def lin(self, e):
        """(coefficients by variable id, constant, irregular) of an index, approximately.

        Exact for affine indices; ``x // c`` and ``x % c`` keep the coefficients of x (divided
        by c for the quotient), which is how far a fused loop's index moves per iteration;
        anything else (min, select, an index read from memory) marks the access irregular,
        keeping the variables it depends on at coefficient 1.
        """
        hit = self.lin_memo.get(id(e))
        if hit is not None:
            return hit[1]
        r = self._lin(e)
        self.lin_memo[id(e)] = (e, r)
        return r

    def _lin(self, e):
        t = type(e)
        if t is E.IntImm:
            return {}, e.value, False
        if t is E.Var:
            let = self.lets.get(id(e))
            return self.lin(let) if let is not None else ({id(e): 1.0}, 0, False)
        if t is E.Add or t is E.Sub:
            ca, ka, ia = self.lin(e.a)
            cb, kb, ib = self.lin(e.b)
            sign = 1.0 if t is E.Add else -1.0
            out = dict(ca)
            for v, c in cb.items():
                out[v] = out.get(v, 0.0) + sign * c
            return out, ka + sign * kb, ia or ib
        if t is E.Mul:
            ca, ka, ia = self.lin(e.a)
            cb, kb, ib = self.lin(e.b)
            if not cb and not ib:
                return {v: c * kb for v, c in ca.items()}, ka * kb, ia
            if not ca and not ia:
                return {v: c * ka for v, c in cb.items()}, ka * kb, ib
            return _irregular(ca, cb)
        if (t is E.FloorDiv or t is E.FloorMod) and type(e.b) is E.IntImm and e.b.value > 0:
            ca, ka, ia = self.lin(e.a)
            if t is E.FloorDiv:
                return {v: c / e.b.value for v, c in ca.items()}, ka // e.b.value, ia
            return ca, ka % e.b.value, ia
        if t is E.Ramp:
            cb, kb, ib = self.lin(e.base)
            cs, ks, is_ = self.lin(e.stride)
            if cs or is_:
                return _irregular(cb, {_LANE: 1.0})
            out = dict(cb)
            out[_LANE] = float(ks)
            return out, kb, ib
        if t is E.Broadcast or t is E.Cast:
            return self.lin(e.value)
        if t is E.Let:
            self.lets[id(e.var)] = e.value
            return self.lin(e.body)
        parts = [self.lin(getattr(e, f)) for f in ("a", "b", "cond", "true_value",
                                                  "false_value", "index")
                 if isinstance(getattr(e, f, None), E.Expr)]
        parts += [self.lin(a) for a in getattr(e, "args", ())]
        return _irregular(*(p[0] for p in parts))


def _irregular(*coef_maps):
    out = {}
    for cm in coef_maps:
        for v in cm:
            out[v] = 1.0
    return out, 0, True


_FLOAT_KIND = {E.Add: "f_addsub", E.Sub: "f_addsub", E.Mul: "f_mul", E.Div: "f_div",
               E.FloorDiv: "f_div", E.FloorMod: "f_div", E.Min: "f_minmax", E.Max: "f_minmax"}
_INT_KIND = {E.Add: "i_arith", E.Sub: "i_arith", E.Mul: "i_arith", E.Div: "i_divmod",
             E.FloorDiv: "i_divmod", E.FloorMod: "i_divmod", E.Min: "i_minmax",
             E.Max: "i_minmax"}
_INDEX_KIND = {E.Add: "idx_arith", E.Sub: "idx_arith", E.Mul: "idx_arith",
               E.FloorDiv: "idx_divmod", E.FloorMod: "idx_divmod", E.Min: "idx_arith",
               E.Max: "idx_arith"}
_FLOAT_OPS = {k: _OP[v] for k, v in _FLOAT_KIND.items()}
_INT_OPS = {k: _OP[v] for k, v in _INT_KIND.items()}
_INDEX_OPS = {k: _OP[v] for k, v in _INDEX_KIND.items()}


def _count(e, ops, loads, seen, guarded):
    """Add the operations of a value expression (times its lanes) to ops; collect its loads.

    A shared subexpression counts once, as the generated code computes it once.
    """
    if id(e) in seen:
        return
    seen.add(id(e))
    t = type(e)
    if t is E.IntImm or t is E.FloatImm or t is E.Var:
        return
    lanes = dt.lanes(e.dtype)
    if t is E.Load:
        ops[_OP["load"]] += lanes
        loads.append((e, guarded))
        _count_index(e.index, ops, loads, seen)
        return
    if isinstance(e, E.BinaryOp):
        if t in E.CMP_OPS:
            ops[_OP["f_cmp" if dt.is_float(e.a.dtype) else "i_cmp"]] += lanes
        elif t is E.And or t is E.Or:
            ops[_OP["logic"]] += lanes
        elif dt.is_float(e.dtype):
            ops[_FLOAT_OPS[t]] += lanes
            if (t is E.Add or t is E.Sub) and (type(e.a) is E.Mul or type(e.b) is E.Mul):
                ops[_OP["f_fma"]] += lanes
        else:
            ops[_INT_OPS[t]] += lanes
        _count(e.a, ops, loads, seen, guarded)
        _count(e.b, ops, loads, seen, guarded)
        return
    if t is E.Select:
        ops[_OP["select"]] += lanes
        _count(e.cond, ops, loads, seen, guarded)
        _count(e.true_value, ops, loads, seen, True)
        _count(e.false_value, ops, loads, seen, True)
        return
    if t is E.Not:
        ops[_OP["logic"]] += lanes
        _count(e.a, ops, loads, seen, guarded)
    elif t is E.Cast:
        ops[_OP["cast"]] += lanes
        _count(e.value, ops, loads, seen, guarded)
    elif t is E.Call:
        ops[_OP["call"]] += lanes
        for a in e.args:
            _count(a, ops, loads, seen, guarded)
    elif t is E.Broadcast:
        _count(e.value, ops, loads, seen, guarded)
    elif t is E.Ramp:
        _count_index(e, ops, loads, seen)
    elif t is E.Let:
        _count(e.value, ops, loads, seen, guarded)
        _count(e.body, ops, loads, seen, guarded)


def _count_index(e, ops, loads, seen):
    """Address arithmetic, counted apart from the computation it feeds."""
    if id(e) in seen:
        return
    seen.add(id(e))
    t = type(e)
    k = _INDEX_OPS.get(t)
    if k is not None:
        ops[k] += 1
    if t is E.Load:
        ops[_OP["load"]] += dt.lanes(e.dtype)
        loads.append((e, False))
        _count_index(e.index, ops, loads, seen)
    elif isinstance(e, E.BinaryOp):
        _count_index(e.a, ops, loads, seen)
        _count_index(e.b, ops, loads, seen)
    elif t is E.Ramp:
        _count_index(e.base, ops, loads, seen)
        _count_index(e.stride, ops, loads, seen)
    elif t is E.Broadcast or t is E.Cast:
        _count_index(e.value, ops, loads, seen)
    elif t is E.Select:
        for x in (e.cond, e.true_value, e.false_value):
            _count_index(x, ops, loads, seen)


def _footprint(p, ext, itemsize):
    """Distinct elements and cache lines one pattern touches at levels 0 .. len(ext).

    Along each dimension (a loop or the lanes, with the index's coefficient c and extent e)
    the access covers e elements spread over c * (e - 1) + 1; the distinct elements are the
    smaller of the product of extents (no overlap) and the total spread (overlapping windows,
    as in a convolution). Dimensions with steps below a cache line share lines; larger steps
    start a new line every time.
    """
    per_line = LINE_BYTES / itemsize
    dims = []
    if p.lanes > 1 and p.lane_coef:
        dims.append((p.lane_coef, p.lanes))
    if len(p.offsets) > 1:
        lo, hi = min(p.offsets), max(p.offsets)
        dims.append(((hi - lo) / (len(p.offsets) - 1), len(p.offsets)))
    prod = span = small = big = 1.0
    uniq, lines = [], []
    for j in range(len(ext) + 1):
        if j:
            c = p.coefs[j - 1]
            dims = [(c, ext[j - 1])] if c else ()
        for c, e in dims:
            prod *= e
            span += c * (e - 1)
            if c < per_line:
                small += c * (e - 1)
            else:
                big *= e
        if p.irregular:
            u = ln = prod
        else:
            u = min(prod, span)
            ln = min(math.ceil(small / per_line) * big, math.ceil(span / per_line), u)
        uniq.append(u)
        lines.append(max(ln, 1.0))
    return uniq, lines


class _Buffer:
    """What one statement does with one buffer, summed over its access patterns."""

    def __init__(self, size, itemsize, local, levels):
        self.size, self.itemsize, self.local = size, itemsize, local
        self.unique = [0.0] * levels
        self.lines = [0.0] * levels
        self.accesses = [0.0] * levels
        self.read = self.write = self.irregular = self.guarded = False
        self.patterns = 0
        self.per_iter = 0
        self.main = None

    def add(self, p, uniq, lines, iters):
        for j, (u, ln, n) in enumerate(zip(uniq, lines, iters)):
            self.unique[j] += u
            self.lines[j] += ln
            self.accesses[j] += p.count * p.lanes * n
        self.read |= p.read
        self.write |= p.write
        self.irregular |= p.irregular
        self.guarded |= p.guarded
        self.patterns += 1
        self.per_iter += p.count * p.lanes
        if self.main is None or p.count * p.lanes > self.main.count * self.main.lanes:
            self.main = p

    def cap(self):
        max_lines = max(self.size * self.itemsize / LINE_BYTES, 1.0)
        self.unique = [min(u, self.size) for u in self.unique]
        self.lines = [min(ln, max_lines) for ln in self.lines]


class _Summary:
    """Derived quantities of one statement: work, operations, buffers, traffic."""

    def __init__(self, st, buffers):
        inner = st.loops[::-1]
        self.st, self.inner = st, inner
        ext = [lp.extent for lp in inner]
        self.iters = iters = [1.0]
        for e in ext:
            iters.append(iters[-1] * e)
        self.trip = iters[-1]
        self.work = self.trip * st.lanes * st.copies
        self.ops = [c * self.trip for c in st.ops]
        self.flops = sum(self.ops[k] for k in _FLOP_KINDS)
        bufs = {}
        for p in st.patterns.values():
            size, itemsize, local = buffers.get(id(p.buffer), (math.inf, 4, False))
            b = bufs.get(id(p.buffer))
            if b is None:
                b = bufs[id(p.buffer)] = _Buffer(size, itemsize, local, len(iters))
            b.add(p, *_footprint(p, ext, itemsize), iters)
        for b in bufs.values():
            b.cap()
        stored = bufs.pop(id(st.buffer))
        rest = sorted(bufs.values(), key=lambda b: -b.unique[-1] * b.itemsize)
        self.buffers = [stored] + rest
        self.accumulate = any(p.read and p.write for p in st.patterns.values())
        self.unique_bytes = sum(b.unique[-1] * b.itemsize for b in self.buffers)
        footprint = [sum(b.lines[j] for b in self.buffers) * LINE_BYTES
                     for j in range(len(iters))]
        self.traffic = []
        for _, size in CACHES:
            fits = [j for j, f in enumerate(footprint) if f <= size]
            j = fits[-1] if fits else 0
            self.traffic.append(footprint[j] * self.trip / iters[j])
        outer_par = next((k for k, lp in enumerate(st.loops) if lp.parallel), None)
        self.par_loops = sum(lp.parallel for lp in st.loops)
        self.par_extent = math.prod(lp.extent for lp in st.loops if lp.parallel) \
            if self.par_loops else 0
        self.par_launches = 0.0 if outer_par is None else \
            math.prod(lp.extent for lp in st.loops[:outer_par])

    def features(self):
        st = self.st
        depth = len(self.inner)
        out = [1.0, _log(self.trip), _log(self.work), math.log2(st.lanes), _log(st.copies),
               depth, float(st.guarded), float(self.accumulate), float(self.buffers[0].local),
               len(self.buffers), self.par_loops, _log(self.par_extent),
               _log(self.par_launches), _log(self.work / max(self.par_extent, 1))]
        out += [_log(c) for c in self.ops]
        out += [_log(self.flops)] + [_log(t) for t in self.traffic]
        out += [_log(self.flops / max(t, 1.0)) for t in self.traffic]
        for k in range(LOOP_SLOTS):
            lp = self.inner[k] if k < depth else None
            out += [_log(lp.extent), float(lp.parallel)] if lp else [0.0, 0.0]
        out.append(_log(self.trip / self.iters[min(LOOP_SLOTS, depth)]))
        for k in range(TOP_BUFFERS):
            if k < len(self.buffers):
                out += _buffer_features(self.buffers[k], depth, st.lanes)
            else:
                out += [0.0] * len(BUFFER_NAMES)
        return out


def _buffer_features(b, depth, lanes):
    p = b.main
    out = [1.0, float(b.read), float(b.write), float(b.local), b.itemsize, b.patterns,
           _log(b.per_iter), float(b.irregular), float(b.guarded), _log(p.lane_coef),
           float(p.lanes > 1 and p.lane_coef == 1), float(lanes > 1 and not p.lane_coef)]
    out += [_log(p.coefs[k]) if k < depth else 0.0 for k in range(LOOP_SLOTS)]
    for j in range(len(LEVELS)):
        j = depth if j == len(LEVELS) - 1 else min(j, depth)
        u = max(b.unique[j], 1.0)
        out += [_log(u * b.itemsize), _log(b.lines[j]), _log(b.accesses[j] / u)]
    return out


def _global_features(w, sums):
    work = sum(s.work for s in sums) or 1.0
    flops = sum(s.flops for s in sums)
    traffic = [sum(s.traffic[k] for s in sums) for k in range(len(CACHES))]
    unique = sum(s.unique_bytes for s in sums)
    vec = [(p.count, p.lane_coef == 1) for s in sums for p in s.st.patterns.values()
           if p.lanes > 1]
    vec_count = sum(c for c, _ in vec)
    alloc_bytes = [b for b, _ in w.allocs]
    par = [s for s in sums if s.par_loops]
    par_extent = max((s.par_extent for s in par), default=0)
    par_work = sum(s.work for s in par)
    return [
        _log(w.n_stores), _log(len(sums)), _log(w.n_loops), w.max_depth, _log(w.n_if),
        _log(len(w.allocs)), _log(sum(alloc_bytes)), _log(max(alloc_bytes, default=0)),
        _log(sum(b for b, local in w.allocs if local)), _log(flops),
        _log(sum(s.ops[_OP["call"]] for s in sums)),
        _log(sum(s.ops[k] for s in sums for k in _INT_KINDS)),
        _log(sum(s.ops[k] for s in sums for k in _INDEX_KINDS)),
        _log(sum(s.ops[_OP["load"]] for s in sums)), _log(work), _log(unique),
        *[_log(t) for t in traffic], *[_log(flops / max(t, 1.0)) for t in traffic],
        _log(flops / max(unique, 1.0)), _log(w.n_par), _log(par_extent), par_work / work,
        _log(par_work / max(par_extent, 1)),
        math.log2(max((s.st.lanes for s in sums), default=1)),
        sum(s.work for s in sums if s.st.lanes > 1) / work,
        sum(c for c, contiguous in vec if contiguous) / vec_count if vec_count else 0.0,
        _log(sum(s.st.copies for s in sums)), _log(max((s.st.copies for s in sums), default=0)),
        sum(s.work for s in sums if s.st.guarded) / work]


def extract(func):
    """The feature vector of a lowered function (``tensorc.lower``): float32, ``NUM_FEATURES``
    long, laid out as ``FEATURE_NAMES``; the same program always gives the same vector."""
    if not isinstance(func, S.PrimFunc):
        raise TypeError(f"features.extract: expected a lowered PrimFunc (tensorc.lower(s, args)),"
                        f" got {type(func).__name__}")
    w = _Walker(func)
    w.stmt(func.body)
    sums = [_Summary(st, w.buffers) for st in w.statements.values()]
    ranked = sorted(sums, key=lambda s: -s.work)
    out = _global_features(w, sums)
    for k in range(TOP_STATEMENTS):
        out += ranked[k].features() if k < len(ranked) else [0.0] * _STATEMENT_SIZE
    vec = np.asarray(out, dtype=np.float32)
    assert vec.size == NUM_FEATURES, (vec.size, NUM_FEATURES)
    return vec
