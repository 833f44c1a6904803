"""Test-session setup shared by every test directory."""
import os

import pytest
from hypothesis import settings

# Property tests explore new random examples on developers' machines (that is how they find
# bugs), but CI must judge a submission on a reproducible run: there the examples are fixed.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True, scope="session")
def _private_build_cache(tmp_path_factory):
    """Keep compiled modules of the test run out of the user's ~/.cache/tensorc."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TENSORC_CACHE_DIR", str(tmp_path_factory.mktemp("tensorc-cache")))
    yield
    mp.undo()
