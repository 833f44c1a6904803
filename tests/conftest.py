"""Test-session setup shared by every test directory."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_build_cache(tmp_path_factory):
    """Keep compiled modules of the test run out of the user's ~/.cache/tensorc."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TENSORC_CACHE_DIR", str(tmp_path_factory.mktemp("tensorc-cache")))
    yield
    mp.undo()
