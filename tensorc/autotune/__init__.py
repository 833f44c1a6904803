"""The autotuner: search spaces over schedule knobs, measurement that survives bad candidates,
an XGBoost cost model over loop features, and a tuning database (AutoTVM's names).

    @autotune.template("my_matmul")
    def my_matmul(M, N, K): ...; cfg = autotune.get_config(); cfg.define_split(...); ...
    task = autotune.create_task("my_matmul", args=(512, 512, 512), target="llvm")
    autotune.XGBTuner(task).tune(n_trial=256, db="tune.db")
    with autotune.apply_history_best("tune.db"):
        f = tc.build(*task.instantiate_best(), target="llvm")

The space and task modules load eagerly (they are small); the rest on first use, so that
``import tensorc.autotune`` does not pull in xgboost or sqlite.
"""
import importlib

from .space import (AnnotateEntity, ConfigEntity, ConfigSpace, OtherOptionEntity,
                    ReorderEntity, SpaceError, SplitEntity, get_config)
from .task import TEMPLATES, Task, create_task, template

_LAZY = {
    "apply_history_best": "dispatch", "TuningDatabase": "database",
    "measure_batch": "measure", "MeasureOption": "measure", "MeasureResult": "measure",
    "MeasureErrorNo": "measure", "XGBoostCostModel": "cost_model",
    "Tuner": "tuner", "RandomTuner": "tuner", "GridSearchTuner": "tuner", "XGBTuner": "xgb_tuner",
    "auto_task": "auto_template", "extract_tasks": "graph_tasks", "tune_tasks": "task_scheduler",
    "Measurer": "measure", "MeasureInput": "measure",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'tensorc.autotune' has no attribute {name!r}")


__all__ = ["AnnotateEntity", "ConfigEntity", "ConfigSpace", "OtherOptionEntity",
           "ReorderEntity", "SpaceError", "SplitEntity", "get_config", "TEMPLATES", "Task",
           "create_task", "template", *_LAZY]
