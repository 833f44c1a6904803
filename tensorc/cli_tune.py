"""``tensorc tune`` and ``tensorc tune-db``: tune a model's kernels from the shell, and look into,
export and import the tuning database that keeps the results.

Tuning takes long, so a run is built to be stopped: every measured batch is in the database
before the next one starts, a run with the same database resumes (``--trials`` counts what is
already there), and Ctrl-C ends the run, keeping every record. The summaries are therefore read
back from the database, not from the run, so they describe everything measured so far,
interrupted or not.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager

from tensorc.cli_bench import _count
from tensorc.cli_models import _reported, _shape_overrides, load_graph

#: configurations ``tune-db show --task`` lists per task unless --top says otherwise
TOP_K = 5


def _tuning_errors(handler):
    """``_reported``, plus a database that cannot be used (not one, corrupt, a bad JSON-lines
    line) as one message and exit status 1."""
    def run(args):
        from tensorc.autotune.database import TuningDatabaseError
        try:
            return handler(args)
        except TuningDatabaseError as e:
            if os.environ.get("TENSORC_DEBUG"):
                raise
            print(f"tensorc {args.command}: error: {e}", file=sys.stderr)
            return 1
    return _reported(run)


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _fmt_time(seconds):
    if seconds is None:
        return "-"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _plural(n, noun):
    return f"{n} {noun}{'s' * (n != 1)}"


def _ratio(default, best):
    return default / best if default and best else None


def _fmt_ratio(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x"


def short_target(key):
    """A target key is the full LLVM feature list (hundreds of characters); show the CPU name
    and a hash that still tells apart two keys of the same CPU with different features. CUDA
    keys ("cuda -arch=sm_80", "cuda-emu") are short and shown whole."""
    if not key.startswith("llvm"):
        return key
    cpu = re.search(r"-mcpu=(\S+)", key)
    digest = hashlib.sha1(key.encode()).hexdigest()[:6]
    return f"{cpu.group(1) if cpu else key.split()[0]}#{digest}"


def task_summary(records, target):
    """Counts, default and best latency of one task's ``records`` measured on ``target`` (a
    target key): what both commands print for a task."""
    from tensorc.autotune.database import pooled
    from tensorc.autotune.graph_tasks import is_default
    mine = [r for r in records if r.target_key == target]
    ok = [r for r in mine if r.ok and r.median_cost is not None]
    ranked = pooled(ok)   # re-measured configurations by the median of all their costs
    default = next((r for r in ranked if is_default(r.config)), None)
    best = ranked[0] if ranked else None
    default_s = default.median_cost if default else None
    best_s = best.median_cost if best else None
    tried = {json.dumps(r.config, sort_keys=True) for r in mine if not is_default(r.config)}
    return {"target": short_target(target), "records": len(mine),
            "trials": len(tried), "ok": len(ok),
            "errors": len(mine) - len(ok), "default_s": default_s, "best_s": best_s,
            "best_gflops": best.gflops if best else None,
            "best_config": best.config if best else None,
            "speedup": _ratio(default_s, best_s)}


# ------------------------------------------------------------------------------------ tune


def _add_tune(sub):
    p = sub.add_parser(
        "tune", help="tune a model's kernels, recording every measurement in a database",
        description="Extract the model's heavy kernels (one task per distinct fused group), "
                    "measure each one's default schedule, then spread --trials measurements "
                    "over the tasks where they buy the most model latency. Every result goes "
                    "to --db; running again with the same database continues where it stopped "
                    "(--trials counts the trials already there), and Ctrl-C stops it, keeping "
                    "every record. With -o, compile the model with the best records.")
    p.add_argument("model", help="model file (.onnx, or .pt for TorchScript)")
    p.add_argument("--trials", type=_count(0), required=True,
                   help="measurements in all, over every task, those in --db included")
    p.add_argument("--db", required=True, help="tuning database file (created when missing)")
    p.add_argument("--shape", action="append", metavar="NAME=D0,D1,...",
                   help="static shape of an input with dynamic dims (repeatable)")
    p.add_argument("--target", default="llvm",
                   help="llvm (default: this CPU), or cuda, 'cuda -arch=sm_XX' (measured on "
                        "the GPU, through pycuda) or cuda-emu (the GPU kernels run on this CPU: "
                        "checks a run, times mean nothing); GPU targets take the template "
                        "space of the groups around a matmul or convolution")
    p.add_argument("--space", choices=("template", "auto"), default="template",
                   help="template (default): a conv or matmul kernel searches its own "
                        "schedule's constants, starting from the default; auto: the "
                        "auto-template of any kernel (larger spaces, no hand schedule)")
    p.add_argument("--tuner", choices=("xgb", "random", "grid"), default="xgb",
                   help="search strategy (default xgb: an XGBoost cost model picks the points)")
    p.add_argument("--batch-size", type=_count(1), default=16,
                   help="points measured per round, one task at a time (default 16)")
    p.add_argument("--early-stopping", type=_count(1), default=None, metavar="K",
                   help="stop tuning a task after K trials without improvement")
    p.add_argument("--timeout", type=_seconds, default=10.0,
                   help="seconds one candidate may run before it counts as hung (default 10)")
    p.add_argument("--threads", type=_count(1), default=None,
                   help="threads every candidate runs with (default: tensorc's, "
                        "TENSORC_NUM_THREADS or the usable cores)")
    p.add_argument("-o", "--output", metavar="MODEL.tcm",
                   help="then compile the model with the best records and save it here")
    p.add_argument("--verify", type=_count(0), default=3, metavar="K",
                   help="at the end, measure each task's K best configurations and its "
                        "default again until each has 3 measurements (default 3; 0: no)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_tuning_errors(_cmd_tune))


@contextmanager
def _interrupt_in_this_process_only():
    """Forked build workers inherit Python's signal handlers: with this one, Ctrl-C (sent to
    the whole process group) interrupts only the tuner, which then stops its workers itself,
    instead of each worker dying with a traceback of its own."""
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers; it also gets the KeyboardInterrupt
        return
    pid = os.getpid()
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if os.getpid() == pid:
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _cmd_tune(args) -> int:
    from tensorc.autotune.database import TuningDatabase, target_key
    from tensorc.autotune.graph_tasks import extract_tasks
    from tensorc.autotune.measure import MeasureOption
    from tensorc.autotune.task_scheduler import tune_tasks
    option = MeasureOption(timeout=args.timeout, threads=args.threads)
    graph = load_graph(args.model, _shape_overrides(args.shape))
    with TuningDatabase(args.db) as db:
        tasks = extract_tasks(graph, target=args.target, space=args.space)
        earlier = sum(db.count(t.key) for t in tasks)
        if not args.json:
            _print_tasks(args, graph, tasks, earlier)
        interrupted = False
        started = time.perf_counter()
        try:
            with _interrupt_in_this_process_only():
                tune_tasks(tasks, args.trials, db, tuner=args.tuner, measure_option=option,
                           batch_size=args.batch_size, early_stopping=args.early_stopping,
                           progress=not args.no_progress, verify=args.verify)
        except KeyboardInterrupt:
            interrupted = True
        report = _tune_report(args, db, tasks, target_key(args.target), interrupted,
                              time.perf_counter() - started)
        if args.output and not interrupted:
            import tensorc as tc
            tc.compile(graph, target=args.target, tuning_db=db).save(args.output)
            report["output"] = args.output
    print(json.dumps(report, indent=2) if args.json else _format_tune(report, args.output))
    return 130 if interrupted else 0


def _print_tasks(args, graph, tasks, earlier):
    from tensorc.autotune.database import target_key
    print(f"{args.model}: {len(graph.nodes)} nodes, {_plural(len(tasks), 'task')} to tune on "
          f"{short_target(target_key(args.target))}")
    if earlier:
        print(f"{args.db} already holds {earlier} records of these tasks: resuming")
    if tasks:
        width = max(len(t.key) for t in tasks)
        print(f"{'#':>3}  {'task':<{width}}  {'weight':>6}  {'MFLOP':>9}  {'space':>10}")
    for i, t in enumerate(tasks):
        print(f"{i:>3}  {t.key:<{width}}  {t.weight:>6}  {t.flop / 1e6:>9.3f}  "
              f"{len(t.config_space):>10}")
    sys.stdout.flush()   # the table shows before the long tuning, even through a pipe


def _tune_report(args, db, tasks, target, interrupted, seconds):
    rows = []
    for i, t in enumerate(tasks):
        s = task_summary(db.records(t.key), target)
        rows.append({"index": i, "task": t.key, "weight": t.weight, "flop": t.flop,
                     "space_size": len(t.config_space), **s})
    counted = [r for r in rows if r["default_s"] and r["best_s"]]
    default = sum(r["weight"] * r["default_s"] for r in counted)
    tuned = sum(r["weight"] * r["best_s"] for r in counted)
    return {"model": args.model, "db": args.db, "trials": args.trials, "tuner": args.tuner,
            "target": short_target(target), "space": args.space, "interrupted": interrupted,
            "seconds": seconds, "db_records": db.count(), "tasks": rows,
            "kernel_time": {"default_s": default, "tuned_s": tuned,
                            "speedup": _ratio(default, tuned), "tasks_counted": len(counted)},
            "output": None}


def _format_tune(report, output):
    rows = report["tasks"]
    width = max([len(r["task"]) for r in rows] + [4])
    lines = [f"{'#':>3}  {'task':<{width}}  {'weight':>6}  {'trials':>6}  {'failed':>6}  "
             f"{'default':>9}  {'best':>9}  {'speed-up':>8}"]
    for r in rows:
        lines.append(f"{r['index']:>3}  {r['task']:<{width}}  {r['weight']:>6}  "
                     f"{r['trials']:>6}  {r['errors']:>6}  {_fmt_time(r['default_s']):>9}  "
                     f"{_fmt_time(r['best_s']):>9}  {_fmt_ratio(r['speedup']):>8}")
    k = report["kernel_time"]
    if k["tasks_counted"]:
        part = ("" if k["tasks_counted"] == len(rows)
                else f" ({k['tasks_counted']} of {len(rows)} tasks measured)")
        lines.append(f"estimated time in the tuned kernels per model run (weight x latency)"
                     f"{part}: default {_fmt_time(k['default_s'])}, tuned "
                     f"{_fmt_time(k['tuned_s'])}, {_fmt_ratio(k['speedup'])}")
    if report["interrupted"]:
        lines.append(f"interrupted: every measurement so far is kept in {report['db']} "
                     f"({_plural(report['db_records'], 'record')}); run the same command "
                     "again to continue" + (" (-o was not written)" if output else ""))
    else:
        lines.append(f"{report['db']}: {_plural(report['db_records'], 'record')} "
                     f"(tuned for {report['seconds']:.1f} s)")
    if report["output"]:
        lines.append(f"compiled with the best records, written to {report['output']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------- tune-db


def _add_tune_db(sub):
    p = sub.add_parser("tune-db", help="show, export or import a tuning database",
                       description="Look into a tuning database written by `tensorc tune` or "
                                   "the autotune API, or move its records as JSON lines.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the tasks of a database, or one task's best configs",
                              description="One line per task and target: records, failures, "
                                          "best latency and GFLOP/s, the default schedule's "
                                          "latency and the speed-up over it. With --task, each "
                                          "matching task's fastest configurations.")
    show.add_argument("db", help="tuning database file")
    show.add_argument("--task", metavar="KEY_SUBSTRING",
                      help="only the tasks whose key contains this, with their top configs")
    show.add_argument("--top", type=_count(1), default=TOP_K,
                      help=f"configurations listed per task with --task (default {TOP_K})")
    show.add_argument("--json", action="store_true", help="print the same as JSON")
    show.set_defaults(func=_tuning_errors(_cmd_show))
    export = actions.add_parser("export", help="write the records as JSON lines")
    export.add_argument("db", help="tuning database file")
    export.add_argument("out", metavar="OUT.jsonl", help="file to write")
    export.add_argument("--task", metavar="KEY",
                        help="only the records of the one task whose key contains this")
    export.set_defaults(func=_tuning_errors(_cmd_export))
    imp = actions.add_parser("import", help="add the records of a JSON-lines file",
                             description="Add every record of the file (all or none, after "
                                         "checking each line), skipping those already there; "
                                         "the database is created when missing.")
    imp.add_argument("db", help="tuning database file")
    imp.add_argument("src", metavar="IN.jsonl", help="file written by `tune-db export`")
    imp.set_defaults(func=_tuning_errors(_cmd_import))


def _existing(path):
    """The database at ``path``; an error when there is none (opening would create one)."""
    from tensorc.autotune.database import TuningDatabase
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no tuning database at {path}")
    return TuningDatabase(path)


def _matching(db, text):
    """The task keys of ``db`` containing ``text``; an error naming the keys when none does."""
    keys = sorted({s.task_key for s in db.tasks()})
    found = [k for k in keys if text in k]
    if not found:
        raise ValueError(f"no task of {db.path} matches {text!r}; its tasks are: "
                         f"{', '.join(keys) or 'none'}")
    return found


def _cmd_show(args) -> int:
    from tensorc.autotune.database import target_key
    with _existing(args.db) as db:
        summaries = db.tasks()
        if args.task:
            keys = set(_matching(db, args.task))
            summaries = [s for s in summaries if s.task_key in keys]
        rows = []
        for s in summaries:
            row = {"task": s.task_key, "name": s.task_name, "target_key": s.target_key,
                   **task_summary(db.records(s.task_key), s.target_key)}
            if args.task:
                row["top"] = [{"config_index": r.config_index, "median_s": r.median_cost,
                               "gflops": r.gflops, "config": r.config}
                              for r in db.top_k(s.task_key, args.top, s.target_key)]
            rows.append(row)
        report = {"db": args.db, "records": db.count(), "host_target": target_key("llvm"),
                  "tasks": rows}
    print(json.dumps(report, indent=2) if args.json else _format_show(report))
    return 0


def _format_show(report):
    rows = report["tasks"]
    lines = [f"{report['db']}: {_plural(report['records'], 'record')}, "
             f"{_plural(len({r['task'] for r in rows}), 'task')}"]
    if not rows:
        return lines[0]
    width = max(len(r["task"]) for r in rows)
    lines.append(f"{'task':<{width}}  {'target':<16}  {'records':>7}  {'ok':>5}  {'errors':>6}  "
                 f"{'best':>9}  {'GFLOP/s':>8}  {'default':>9}  {'speed-up':>8}")
    for r in rows:
        gflops = "-" if r["best_gflops"] is None else f"{r['best_gflops']:.2f}"
        lines.append(f"{r['task']:<{width}}  {r['target']:<16}  {r['records']:>7}  "
                     f"{r['ok']:>5}  {r['errors']:>6}  {_fmt_time(r['best_s']):>9}  "
                     f"{gflops:>8}  {_fmt_time(r['default_s']):>9}  "
                     f"{_fmt_ratio(r['speedup']):>8}")
    here = [r["target"] for r in rows if r["target_key"] == report["host_target"]]
    lines.append(f"target {here[0]} is this machine" if here else
                 "no records of this machine's target (CPU and features)")
    for r in rows:
        if "top" in r:
            lines.append(f"\n{r['task']} on {r['target']}: the {len(r['top'])} fastest "
                         "configurations")
            lines.append(f"{'rank':>4}  {'latency':>9}  {'GFLOP/s':>8}  {'index':>8}  config")
            for rank, c in enumerate(r["top"], 1):
                index = "-" if c["config_index"] is None else c["config_index"]
                lines.append(f"{rank:>4}  {_fmt_time(c['median_s']):>9}  {c['gflops']:>8.2f}  "
                             f"{index:>8}  {_describe_config(c['config'])}")
    return "\n".join(lines)


def _describe_config(config):
    from tensorc.autotune.graph_tasks import is_default
    if is_default(config):
        return "the compiler's default schedule"
    return json.dumps(config, separators=(",", ":"))


def _cmd_export(args) -> int:
    with _existing(args.db) as db:
        key = None
        if args.task:
            found = _matching(db, args.task)
            if len(found) > 1:
                raise ValueError(f"--task {args.task!r} matches {len(found)} tasks of "
                                 f"{args.db} ({', '.join(found)}); give more of the key")
            key = found[0]
        n = db.export_jsonl(args.out, key)
    print(f"exported {n} records{f' of {key}' if key else ''} from {args.db} to {args.out}")
    return 0


def _cmd_import(args) -> int:
    from tensorc.autotune.database import TuningDatabase
    if not os.path.isfile(args.src):
        raise FileNotFoundError(f"no such file: {args.src}")
    with TuningDatabase(args.db) as db:
        new = db.import_jsonl(args.src)
        total = db.count()
    print(f"imported {new} new records from {args.src} into {args.db} ({total} records now)")
    return 0


COMMANDS = [_add_tune, _add_tune_db]

__all__ = ["COMMANDS", "short_target", "task_summary"]
