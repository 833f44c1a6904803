"""docs/writing_an_op.md runs: its python blocks, in order, as one program, at small sizes."""
import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "writing_an_op.md"


def test_every_code_block_of_the_walkthrough_runs(tmp_path, monkeypatch):
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    code = "\n".join(blocks)
    small = {"B, I, J, DIN, DOUT = ": "B, I, J, DIN, DOUT = 3, 37, 5, 7, 9",
             "TRIALS = ": "TRIALS = 4"}
    for prefix, line in small.items():
        code, n = re.subn(rf"^{re.escape(prefix)}.*$", line, code, count=1, flags=re.M)
        assert n == 1, f"the doc no longer sets {prefix.strip(' =')}"
    monkeypatch.chdir(tmp_path)          # the tuning database goes here
    namespace = {"__name__": "writing_an_op"}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["rel_l2"](namespace["lib"], namespace["ref"]) < 1e-5
    assert (tmp_path / "routing_tune.db").exists()
