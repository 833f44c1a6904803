"""A small builder for textual LLVM IR.

Text rather than llvmlite.ir: what this backend needs (vector GEPs feeding masked gathers,
self-referential loop metadata, current parameter attributes) is one format string away, and the
text is exactly what ``get_source("ll-unoptimized")`` shows. Values are (type, reference) pairs;
the builder checks nothing itself, LLVM's parser and verifier do.
"""
import re
import struct
from typing import NamedTuple

import numpy as np

from ..ir import dtype as dt

_SCALAR = {"bool": "i1", "float16": "half", "float32": "float", "float64": "double",
           "handle": "ptr"}
_SUFFIX = {"half": "f16", "float": "f32", "double": "f64", "ptr": "p0"}


def scalar_type(dtype):
    """LLVM register type of one element of dtype (bool is i1 in registers)."""
    base = dt.element_of(dtype)
    return _SCALAR.get(base) or f"i{dt.bits(base)}"


def llvm_type(dtype):
    return vector_type(scalar_type(dtype), dt.lanes(dtype))


def mem_type(dtype):
    """LLVM type of dtype in memory: bool occupies a byte, as numpy stores it."""
    elem = "i8" if dt.is_bool(dtype) else scalar_type(dtype)
    return vector_type(elem, dt.lanes(dtype))


def vector_type(elem, lanes):
    return elem if lanes == 1 else f"<{lanes} x {elem}>"


def lanes_of(ty):
    return int(ty[1:ty.index(" ")]) if ty.startswith("<") else 1


def element_type(ty):
    return ty[ty.index("x ") + 2:-1] if ty.startswith("<") else ty


def with_element(ty, elem):
    return vector_type(elem, lanes_of(ty))


def intrinsic_suffix(ty):
    """Overload suffix of an intrinsic name: float -> f32, <8 x float> -> v8f32."""
    elem = element_type(ty)
    s = _SUFFIX.get(elem, elem)
    return f"v{lanes_of(ty)}{s}" if ty.startswith("<") else s


class Value(NamedTuple):
    """An SSA value or constant: its LLVM type and how the IR refers to it."""
    ty: str
    ref: str

    def __str__(self):
        return f"{self.ty} {self.ref}"


def _literal(elem, value):
    if elem == "i1":
        return "true" if value else "false"
    if elem.startswith("i"):
        nbits = int(elem[1:])
        v = int(value) & ((1 << nbits) - 1)
        return str(v - (1 << nbits) if v >> (nbits - 1) else v)
    with np.errstate(over="ignore"):  # out-of-range constants round to infinity, as numpy's do
        if elem == "half":
            return f"0xH{int(np.float16(value).view(np.uint16)):04X}"
        if elem == "float":
            value = float(np.float32(value))
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


def const(ty, value):
    """The constant ``value`` of scalar type ty, or splatted into every lane of vector type ty."""
    lit = _literal(element_type(ty), value)
    if ty.startswith("<"):
        return Value(ty, f"splat ({element_type(ty)} {lit})")
    return Value(ty, lit)


def const_vector(ty, values):
    elem = element_type(ty)
    return Value(ty, "<" + ", ".join(f"{elem} {_literal(elem, v)}" for v in values) + ">")


def zero(ty):
    if ty.startswith("<"):
        return Value(ty, "zeroinitializer")
    return Value(ty, "null" if ty == "ptr" else _literal(ty, 0))


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9_.]", "_", name) or "v"


class ModuleBuilder:
    """Collects declarations, globals, functions and metadata of one LLVM module."""

    def __init__(self):
        self._decls = {}
        self._globals = []
        self._functions = []
        self._metadata = []
        self._names = set()

    def declare(self, name, ret, arg_types, attrs=""):
        line = f"declare {ret} @{name}({', '.join(arg_types)})"
        self._decls.setdefault(name, f"{line} {attrs}" if attrs else line)

    def add_global(self, line):
        self._globals.append(line)

    def unique_name(self, base):
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}{k}"
        self._names.add(name)
        return name

    def loop_metadata(self, hints):
        """A distinct ``!llvm.loop`` node carrying the given hint nodes ("llvm.loop.unroll.enable")."""
        loop_id = len(self._metadata)
        ids = [f"!{loop_id + 1 + k}" for k in range(len(hints))]
        self._metadata.append(f"!{loop_id} = distinct !{{!{loop_id}, {', '.join(ids)}}}")
        for i, hint in zip(ids, hints):
            self._metadata.append(f"{i} = !{{{hint}}}")
        return f"!{loop_id}"

    def function(self, name, ret, params, linkage="", attrs="#0"):
        fb = FunctionBuilder(self, name, ret, params, linkage, attrs)
        self._functions.append(fb)
        return fb

    def text(self, triple, datalayout, fn_attrs):
        out = [f'target triple = "{triple}"', f'target datalayout = "{datalayout}"', ""]
        out += self._globals + [""]
        out += sorted(self._decls.values()) + [""]
        for fb in self._functions:
            out += [fb.text(), ""]
        out.append(f"attributes #0 = {{ {fn_attrs} }}")
        out += self._metadata
        return "\n".join(out) + "\n"


class FunctionBuilder:
    """Instructions of one function, appended at the end of the current block.

    Allocas go to the top of the entry block whatever the current block is, so a buffer declared
    inside a loop is one stack slot rather than a stack that grows with every iteration.
    """

    def __init__(self, module, name, ret, params, linkage, attrs):
        self.module = module
        self.name = name
        self.ret_type = ret
        self._header = (linkage, attrs)
        self._params = []
        for k, (ty, pname, pattrs) in enumerate(params):
            ref = f"%arg.{sanitize(pname)}"
            if any(ref == p[1] for p in self._params):
                ref = f"{ref}.{k}"
            self._params.append((ty, ref, pattrs))
        self.args = [Value(ty, ref) for ty, ref, _ in self._params]
        self._counter = 0
        self._allocas = []
        self._blocks = [("entry", [])]
        self.block = "entry"

    def fresh(self, hint="t"):
        self._counter += 1
        return f"%{sanitize(hint)}{self._counter}"

    def label(self, hint):
        self._counter += 1
        return f"{sanitize(hint)}{self._counter}"

    def start_block(self, label):
        self._blocks.append((label, []))
        self.block = label

    def emit(self, line):
        self._blocks[-1][1].append("  " + line)

    def inst(self, ty, text, hint="t", name=None):
        ref = name or self.fresh(hint)
        self.emit(f"{ref} = {text}")
        return Value(ty, ref)

    def alloca(self, ty, align, hint="buf"):
        ref = self.fresh(hint)
        self._allocas.append(f"  {ref} = alloca {ty}, align {align}")
        return Value("ptr", ref)

    def binop(self, op, a, b, flags=""):
        fl = f" {flags}" if flags else ""
        return self.inst(a.ty, f"{op}{fl} {a}, {b.ref}")

    def icmp(self, pred, a, b):
        return self.inst(with_element(a.ty, "i1"), f"icmp {pred} {a}, {b.ref}")

    def fcmp(self, pred, a, b, flags=""):
        fl = f" {flags}" if flags else ""
        return self.inst(with_element(a.ty, "i1"), f"fcmp{fl} {pred} {a}, {b.ref}")

    def convert(self, op, v, ty):
        if v.ty == ty and op in ("bitcast", "trunc", "sext", "zext", "fpext", "fptrunc"):
            return v
        return self.inst(ty, f"{op} {v} to {ty}")

    def select(self, cond, a, b):
        return self.inst(a.ty, f"select {cond}, {a}, {b}")

    def call(self, ret, fname, args, flags=""):
        fl = f"{flags} " if flags else ""
        text = f"call {fl}{ret} @{fname}({', '.join(str(a) for a in args)})"
        if ret == "void":
            self.emit(text)
            return None
        return self.inst(ret, text)

    def load(self, ty, ptr, align=None):
        return self.inst(ty, f"load {ty}, {ptr}" + (f", align {align}" if align else ""))

    def store(self, value, ptr, align=None):
        self.emit(f"store {value}, {ptr}" + (f", align {align}" if align else ""))

    def gep(self, elem, ptr, index, inbounds=True):
        """Address of element ``index`` (i64, or a vector of i64 giving a vector of pointers)."""
        ty = with_element(index.ty, "ptr")
        kw = "getelementptr inbounds" if inbounds else "getelementptr"
        return self.inst(ty, f"{kw} {elem}, {ptr}, {index}", hint="p")

    def struct_gep(self, struct_ty, ptr, field):
        return self.inst("ptr", f"getelementptr inbounds {struct_ty}, {ptr}, i32 0, i32 {field}",
                         hint="p")

    def extract(self, vec, lane):
        return self.inst(element_type(vec.ty), f"extractelement {vec}, i32 {lane}")

    def insert(self, vec, value, lane):
        return self.inst(vec.ty, f"insertelement {vec}, {value}, i32 {lane}")

    def splat(self, value, lanes):
        if not value.ref.startswith("%"):
            return Value(vector_type(value.ty, lanes), f"splat ({value})")
        ty = vector_type(value.ty, lanes)
        one = self.insert(Value(ty, "poison"), value, 0)
        return self.inst(ty, f"shufflevector {one}, {ty} poison, <{lanes} x i32> zeroinitializer")

    def phi(self, ty, incoming, name=None):
        arms = ", ".join(f"[ {v}, %{label} ]" for v, label in incoming)
        return self.inst(ty, f"phi {ty} {arms}", name=name)

    def br(self, label, loop_md=None):
        md = f", !llvm.loop {loop_md}" if loop_md else ""
        self.emit(f"br label %{label}{md}")

    def cbr(self, cond, if_true, if_false):
        self.emit(f"br {cond}, label %{if_true}, label %{if_false}")

    def ret(self, value=None):
        self.emit("ret void" if value is None else f"ret {value}")

    def text(self):
        linkage, attrs = self._header
        params = ", ".join(" ".join(x for x in (ty, pattrs, ref) if x)
                           for ty, ref, pattrs in self._params)
        head = " ".join(x for x in ("define", linkage, self.ret_type) if x)
        lines = [f"{head} @{self.name}({params}) {attrs} {{"]
        for k, (label, body) in enumerate(self._blocks):
            lines.append(f"{label}:")
            if k == 0:
                lines += self._allocas
            lines += body
        lines.append("}")
        return "\n".join(lines)
