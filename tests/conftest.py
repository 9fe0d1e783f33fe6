"""Test session setup: one persistent XLA cache per test run, shared by the pytest-xdist workers
and every subprocess they start (CLI runs, notebook kernels), so identical programs compile once."""

import os
import tempfile

from dreamer.jax_setup import enable_compilation_cache

if not os.environ.get("DREAMER_CACHE"):
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
    os.environ["DREAMER_CACHE"] = (
        os.path.join(tempfile.gettempdir(), f"dreamer-xla-{run_id}")
        if run_id else tempfile.mkdtemp(prefix="dreamer-xla-")
    )
enable_compilation_cache(os.environ["DREAMER_CACHE"])


def pytest_collection_modifyitems(items):
    """The notebooks' smoke runs share compiled programs (01's tiny cartpole agent is 02's, 02's
    ablation is 03's): one worker runs them in order, so each program compiles once."""
    import pytest

    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group("notebooks"))
