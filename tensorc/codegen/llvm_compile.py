"""LLVM IR text to a shared object: O3 with the new pass manager, object emission, ``cc`` link.

``assemble`` turns an assembler file into an object with the same driver: graph modules use it
for their weights, which are ``.incbin``-ed from a binary file rather than written as IR text.

The link goes through the system C compiler driver because it knows where libgomp and libm live
and how to make a shared object on this platform; LLVM itself has no linker here.
"""
import os
import shutil
import subprocess
import tempfile

import llvmlite.binding as llvm

from .target import target_machine


def compile_ir(ir_text, target):
    """Optimize ``ir_text`` for target; returns (optimized IR text, assembly text, object bytes)."""
    tm = target_machine(target)
    module = llvm.parse_assembly(ir_text)
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = True
    passes = llvm.create_pass_builder(tm, tuning)
    passes.getModulePassManager().run(module, passes)
    return str(module), tm.emit_assembly(module), tm.emit_object(module)


def linker():
    """The C compiler driver used to link ($CC, else cc)."""
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise RuntimeError(f"cannot link the compiled module: the C compiler driver {cc!r} "
                           "(from $CC, default 'cc') is not on PATH; install gcc or clang, or set "
                           "CC to one")
    return path


def link_shared(obj, so_path, extra_objects=(), extra_flags=()):
    """Link object bytes (plus the object files ``extra_objects``) into the shared library
    ``so_path`` against libgomp and libm; ``extra_flags`` go to the driver before the libraries."""
    cc = linker()
    with tempfile.TemporaryDirectory(prefix="tensorc-link-") as tmp:
        obj_path = os.path.join(tmp, "module.o")
        with open(obj_path, "wb") as f:
            f.write(obj)
        done = subprocess.run([cc, "-shared", "-o", so_path, obj_path, *extra_objects,
                               *extra_flags, "-lgomp", "-lm"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"linking {so_path} with {cc} failed:\n{done.stderr}")


def assemble(source_path, obj_path):
    """Assemble the file ``source_path`` into the object ``obj_path`` with the C compiler driver.

    It runs in the source's directory, so the source may ``.incbin`` files next to it by name.
    """
    cc = linker()
    done = subprocess.run([cc, "-c", "-o", os.path.abspath(obj_path),
                           os.path.basename(source_path)],
                          cwd=os.path.dirname(os.path.abspath(source_path)),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"assembling {source_path} with {cc} failed:\n{done.stderr}")
