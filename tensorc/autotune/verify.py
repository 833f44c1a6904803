"""Re-measuring the best candidates before anyone relies on them.

A search measures each candidate once and keeps the fastest. With hundreds of candidates and
noisy measurements, the fastest measurement is mostly the luckiest one (the winner's curse):
in a ResNet-18 run the default schedule, measured twice, came out at 1.53 and 1.91 ms. So
after a search the few best configurations and the baseline (the default schedule) are
measured again, in alternation, until each has ``rounds`` measurements; the database ranks a
configuration by the median of all its costs (``TuningDatabase.ranked``). A configuration that
was only lucky falls back, the next one is verified in turn, and what ``compile`` or
``apply_history_best`` picks has been measured as often as the default it replaces.
"""
import json
import logging

log = logging.getLogger("tensorc.autotune")

#: Rounds of "verify the current top, see whether the ranking changed" before giving up.
MAX_PASSES = 4


def verify_best(task, database, measurer, top=3, rounds=3):
    """Measure ``task``'s ``top`` best configurations in ``database`` and its baseline again
    until each has ``rounds`` successful measurements; returns how many measurements were
    made. ``measurer`` is a ``Measurer`` (built once, run ``rounds`` times), any object with
    ``measure(task, configs)``, or such a measure function itself."""
    if top < 1 or rounds < 1:
        return 0
    baseline = task.baseline_config() if hasattr(task, "baseline_config") else None
    made = 0
    for _ in range(MAX_PASSES):
        configs = [task.config(r.config) for r in database.top_k(task.key, top, task.target)]
        if baseline is not None and not any(_same(c, baseline) for c in configs):
            configs.append(baseline)
        missing = [rounds - database.measurements(task.key, c.to_dict(), task.target)
                   for c in configs]
        todo = [(c, n) for c, n in zip(configs, missing) if n > 0]
        if not todo:
            break
        made += _measure_rounds(task, database, measurer, todo)
    return made


def baseline_scale(task, database):
    """The pooled median cost of ``task``'s baseline in ``database`` (seconds), or None: the
    unit a resumed run should measure in, so its costs compare with the earlier ones."""
    baseline = task.baseline_config() if hasattr(task, "baseline_config") else None
    if baseline is None:
        return None
    for rec in database.ranked(task.key, task.target):
        if _same_dict(rec.config, baseline.to_dict()):
            return rec.median_cost
    return None


def _measure_rounds(task, database, measurer, todo):
    """Measure each (config, n) n times, all configs of a round together, so that every
    configuration sees the same stretches of machine time."""
    builds = None
    if hasattr(measurer, "build") and hasattr(measurer, "run"):
        built = measurer.build(task, [c for c, _ in todo])
        builds = dict(zip((id(c) for c, _ in todo), built))
    made = 0
    for r in range(max(n for _, n in todo)):
        batch = [c for c, n in todo if n > r]
        if builds is not None:
            results = measurer.run(task, [builds[id(c)] for c in batch])
        else:
            results = getattr(measurer, "measure", measurer)(task, batch)
        for cfg, res in zip(batch, results):
            database.add_result(task, cfg.to_dict(), res, index=cfg.index)
            if res.error_no != 0:
                log.warning("%s: re-measuring config #%s failed: %s", task.key, cfg.index,
                            res.error_msg)
        made += len(batch)
    return made


def _same(a, b):
    return _same_dict(a.to_dict(), b.to_dict())


def _same_dict(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


__all__ = ["baseline_scale", "verify_best"]
