"""The tables the TorchScript walker dispatches on, and the decorators that fill them.

They live apart from the converters so that every family module (``torchscript_ops_*``)
registers into the same dicts without importing the others; ``torchscript_ops`` imports every
family, so the tables are complete once it is imported.
"""

CONVERTERS = {}

#: kind -> f(call, *args): Python evaluation of builtins on static values (and containers of
#: graph values: lists and tuples of tensors are Python lists and tuples here).
STATIC_OPS = {}
#: STATIC_OPS that also take constant torch tensors as direct arguments.
STATIC_TENSOR_OK = set()
#: kind -> f(call): queries answered from a graph tensor's static shape and dtype.
SHAPE_QUERIES = {}
#: STATIC_OPS that take graph values as direct arguments (containers: append a tensor to a
#: list, test it against None).
VALUES_OK = {"aten::append", "aten::extend", "aten::insert", "aten::_set_item",
             "aten::__is__", "aten::__isnot__", "aten::warn", "aten::list", "aten::__getitem__"}
#: kinds that go to their converter even when every input is static (identity ops that torch
#: marks nondeterministic, like dropout).
NEVER_FOLD = set()
#: nondeterministic kinds that are safe to evaluate statically.
DETERMINISTIC_OK = set()


def converter(*kinds):
    def deco(fn):
        for k in kinds:
            CONVERTERS[k] = fn
        return fn
    return deco


def static_op(*kinds, tensors=False):
    def deco(fn):
        for k in kinds:
            STATIC_OPS[k] = fn
            if tensors:
                STATIC_TENSOR_OK.add(k)
        return fn
    return deco


def shape_query(*kinds):
    def deco(fn):
        for k in kinds:
            SHAPE_QUERIES[k] = fn
        return fn
    return deco
