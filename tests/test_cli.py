"""The ``tensorc`` command line: ``tensorc info`` and ``tensorc info --json``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BACKENDS = {"onnx", "onnxruntime", "torch", "pycuda", "nvcc", "nvrtc", "xgboost"}


def _env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORC_")}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True):
    proc = subprocess.run(
        [sys.executable, "-m", "tensorc.cli", *args],
        cwd=REPO,
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def info_json(env: dict[str, str] | None = None) -> dict:
    return json.loads(run_cli("info", "--json", env=env).stdout)


def _project_version() -> str:
    """pyproject's version when tensorc is installed (pip install -e .), as the CLI reports."""
    import importlib.metadata

    try:
        importlib.metadata.version("tensorc")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def test_info_json_fields():
    import llvmlite
    import llvmlite.binding as llvm
    import numpy

    data = info_json()
    llvm.initialize_native_target()
    assert data["tensorc_version"] == _project_version()
    assert data["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert data["numpy_version"] == numpy.__version__
    assert data["llvmlite_version"] == llvmlite.__version__
    assert data["llvm_version"] == ".".join(map(str, llvm.llvm_version_info))
    assert data["cpu_name"] == llvm.get_host_cpu_name()
    assert data["host_triple"] == llvm.get_process_triple()
    assert isinstance(data["cpu_features"], list)
    enabled = {f for f, on in llvm.get_host_cpu_features().items() if on}
    assert set(data["cpu_features"]) <= enabled
    for feat in ("avx", "avx2", "fma", "avx512f"):
        assert (feat in data["cpu_features"]) == (feat in enabled)
    assert data["float32_vector_width"] in (1, 4, 8, 16)
    if "avx512f" in enabled:
        assert data["float32_vector_width"] == 16
    elif "avx" in enabled:
        assert data["float32_vector_width"] == 8
    assert data["cores_usable"] == len(os.sched_getaffinity(0))
    assert data["num_threads"] == data["cores_usable"]
    assert data["num_threads_source"] == "cores"
    assert data["num_threads_error"] is None


def test_info_json_backends_match_find_spec():
    data = info_json()
    assert set(data["backends"]) == BACKENDS
    for name in ("onnx", "onnxruntime", "torch", "pycuda", "xgboost"):
        entry = data["backends"][name]
        assert entry["available"] is (importlib.util.find_spec(name) is not None), name
        if not entry["available"]:
            assert entry["version"] is None
    if not data["backends"]["pycuda"]["available"]:
        assert data["backends"]["pycuda"]["cuda"] == "pycuda missing"
    nvcc = data["backends"]["nvcc"]
    assert nvcc["available"] is (nvcc["path"] is not None)


def test_info_reports_nvrtc_as_the_compiler_sees_it():
    from tensorc.codegen import nvrtc
    entry = info_json()["backends"]["nvrtc"]
    assert entry["available"] is nvrtc.available()
    if entry["available"]:
        assert entry["path"] == nvrtc.library_path()
        assert entry["version"] == "%d.%d" % nvrtc.version()
        assert "sm_80" in entry["archs"] and "sm_90" in entry["archs"]
    else:
        assert "nvidia-cuda-nvrtc" in entry["error"]


def test_info_says_how_to_get_nvrtc_when_it_is_missing(monkeypatch):
    from tensorc import info
    from tensorc.codegen import nvrtc

    def unavailable():
        raise nvrtc.NvrtcUnavailable("NVRTC is not available (no libnvrtc.so found); "
                                     "pip install nvidia-cuda-nvrtc")
    monkeypatch.setattr(nvrtc, "library_path", unavailable)
    entry = info._nvrtc()
    assert entry["available"] is False and entry["archs"] == []
    assert info._backend_line("nvrtc", entry).startswith("missing (NVRTC is not available")


def test_info_does_not_import_heavy_modules():
    code = textwrap.dedent(
        """
        import sys
        from tensorc import info
        info.collect()
        heavy = ("torch", "onnx", "onnxruntime", "xgboost")
        print(",".join(m for m in heavy if m in sys.modules))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == ""


def test_num_threads_and_cache_dir_from_env(tmp_path):
    cache = tmp_path / "tc-cache"
    data = info_json(_env(TENSORC_NUM_THREADS="3", TENSORC_CACHE_DIR=str(cache)))
    assert data["num_threads"] == 3
    assert data["num_threads_source"] == "TENSORC_NUM_THREADS"
    assert data["cache_dir"] == str(cache)


@pytest.mark.parametrize("value", ["lots", "0", "-2"])
def test_invalid_num_threads_is_reported(value):
    env = _env(TENSORC_NUM_THREADS=value)
    data = info_json(env)
    assert data["num_threads"] is None
    assert repr(value) in data["num_threads_error"]
    text = run_cli("info", env=env).stdout
    assert "threads:" in text and "INVALID" in text


_AGREE = textwrap.dedent(
    """
    import json
    from tensorc import info
    from tensorc.codegen.llvm_compile import linker
    from tensorc.runtime import cache, threads
    print(json.dumps({
        "threads": [info.num_threads(), threads.get_num_threads()],
        "cache": [info.cache_dir(), str(cache.cache_dir())],
        "cc": [info.collect()["cc"], linker()],
    }))
    """
)


@pytest.mark.parametrize("threads", [None, "3"])
def test_info_agrees_with_the_runtime(tmp_path, threads):
    """`tensorc info` mirrors the runtime's settings without importing it: check they agree."""
    env = _env(TENSORC_NUM_THREADS=threads, HOME=str(tmp_path))
    for cache_env in (None, str(tmp_path / "cache")):
        if cache_env is not None:
            env["TENSORC_CACHE_DIR"] = cache_env
        proc = subprocess.run([sys.executable, "-c", _AGREE], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        for key, (ours, runtime) in json.loads(proc.stdout).items():
            assert ours == runtime, key


def test_default_cache_dir_under_home(tmp_path):
    data = info_json(_env(HOME=str(tmp_path)))
    assert data["cache_dir"] == str(tmp_path / ".cache" / "tensorc")


def test_info_text(tmp_path):
    cache = tmp_path / "cache"
    out = run_cli("info", env=_env(TENSORC_NUM_THREADS="3", TENSORC_CACHE_DIR=str(cache))).stdout
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    data = info_json()
    assert fields["tensorc"] == data["tensorc_version"]
    assert fields["numpy"] == data["numpy_version"]
    assert fields["llvmlite"].startswith(data["llvmlite_version"])
    assert f"LLVM {data['llvm_version']}" in fields["llvmlite"]
    assert fields["cpu"] == data["cpu_name"]
    assert fields["cpu features"].split() == data["cpu_features"] or not data["cpu_features"]
    assert fields["f32 vector width"].startswith(f"{data['float32_vector_width']} lanes")
    assert fields["cores usable"].startswith(str(data["cores_usable"]))
    assert fields["threads"].startswith("3 (from TENSORC_NUM_THREADS)")
    assert fields["cache dir"] == str(cache)
    for name in BACKENDS:
        assert name in fields, name
    if importlib.util.find_spec("pycuda") is None:
        assert fields["pycuda"] == "pycuda missing"
    if importlib.util.find_spec("xgboost") is not None:
        assert fields["xgboost"].startswith("yes")


def _fake_pycuda(root: Path, body: str) -> None:
    pkg = root / "pycuda"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "driver.py").write_text(textwrap.dedent(body))


def test_pycuda_without_driver(tmp_path):
    _fake_pycuda(tmp_path, """
        class Error(Exception):
            pass
        def init():
            raise Error("cuInit failed: no CUDA-capable device is detected")
        """)
    data = info_json(_env(PYTHONPATH=str(tmp_path)))
    entry = data["backends"]["pycuda"]
    assert entry["available"] is True
    assert entry["cuda"].startswith("no CUDA driver/device")
    assert "cuInit failed" in entry["cuda"]


def test_pycuda_with_device(tmp_path):
    _fake_pycuda(tmp_path, """
        def init():
            pass
        def get_driver_version():
            return 13000
        class Device:
            def __init__(self, i):
                self.i = i
            @staticmethod
            def count():
                return 2
            def name(self):
                return "Fake GPU"
            def compute_capability(self):
                return (9, 0)
        """)
    data = info_json(_env(PYTHONPATH=str(tmp_path)))
    entry = data["backends"]["pycuda"]
    assert entry["cuda"] == "2 device(s); 0: Fake GPU (sm_90)"
    assert entry["devices"] == 2
    assert entry["driver_version"] == 13000


def test_no_subcommand_prints_usage():
    proc = run_cli(check=False)
    assert proc.returncode == 2
    assert "usage: tensorc" in proc.stderr
    assert "info" in proc.stderr


def test_version():
    assert run_cli("--version").stdout.strip() == f"tensorc {_project_version()}"


def test_unknown_subcommand_fails():
    proc = run_cli("no-such-command", check=False)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_adding_a_subcommand_is_one_function(monkeypatch, capsys):
    from tensorc import cli

    def _add_hello(sub):
        p = sub.add_parser("hello")
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.name}") or 7)

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, _add_hello])
    assert cli.main(["hello", "--name", "tc"]) == 7
    assert capsys.readouterr().out == "hello tc\n"
    assert cli.main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backends"].keys() == BACKENDS


def test_console_script_if_installed():
    script = Path(sys.executable).parent / "tensorc"
    if not script.exists():
        pytest.skip("tensorc is not installed in this environment (pip install -e .)")
    proc = subprocess.run([str(script), "info", "--json"], env=_env(), capture_output=True,
                          text=True, timeout=120, check=True, stdin=subprocess.DEVNULL)
    assert json.loads(proc.stdout)["tensorc_version"] == _project_version()
