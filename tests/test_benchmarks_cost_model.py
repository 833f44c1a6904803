"""benchmarks/bench_cost_model.py: the ranking study scores a model that can read the speed
off its features near perfect, and one given noise at chance."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_cost_model  # noqa: E402 -- benchmarks/ is not a package


def test_rank_study_tells_informative_features_from_noise():
    rng = np.random.default_rng(0)
    speed = rng.uniform(1, 100, 120)
    informative = [speed, np.sqrt(speed), np.log(speed), rng.normal(size=120)]
    data = {"loop": np.stack(informative, axis=1).astype(np.float32),
            "knob": rng.normal(size=(120, 2)).astype(np.float32), "gflops": speed}
    rows = {(n, f, o): (sp, top) for n, f, o, sp, top, _ in
            bench_cost_model.rank_study(data, sizes=[32], splits=3, seed=0)}
    for objective in ("rank", "reg"):
        sp, top = rows[32, "loop", objective]
        assert sp > 0.85 and top > 0.95
        assert abs(rows[32, "knob", objective][0]) < 0.4
