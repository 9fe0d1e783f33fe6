"""Test session setup: one persistent XLA cache per test run, shared by the pytest-xdist workers
and every subprocess they start (CLI runs, notebook kernels), so identical programs compile once."""

import os
import tempfile

import pytest

from dreamer.jax_setup import enable_compilation_cache

if not os.environ.get("DREAMER_CACHE"):
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
    os.environ["DREAMER_CACHE"] = (
        os.path.join(tempfile.gettempdir(), f"dreamer-xla-{run_id}")
        if run_id else tempfile.mkdtemp(prefix="dreamer-xla-")
    )
enable_compilation_cache(os.environ["DREAMER_CACHE"])


TINY_COIN_OPTIONS = {"rooms": 3, "max_episode_steps": 4}
"""text/coin on 3-room maps with 4 steps per episode: enough for Tremaux's rule to win every map,
while random play over the valid commands wins about 0.4."""


@pytest.fixture(scope="session")
def tiny_coin_run(tmp_path_factory) -> str:
    """The folder of one `tiny` text/coin run through the CLI (1,536 real steps on
    TINY_COIN_OPTIONS maps, 200 evaluation episodes at the end), trained once per worker: the
    learning test reads its result and the play test watches it (both in the `tiny_coin`
    xdist group)."""
    from dreamer import cli

    out = str(tmp_path_factory.mktemp("tiny_coin") / "run")
    options = [f"world_options.{k}={v}" for k, v in TINY_COIN_OPTIONS.items()]
    # Running out of steps is failure here: values then rank moves by their chance of success.
    settings = [*options, "train.time_limit=terminal", "train.train_ratio=1",
                "run.eval_interval=1536", "run.eval_episodes=200"]
    argv = ["train", "--world", "text/coin", "--preset", "tiny", "--real-steps", "1536",
            "--seed", "0", "--out", out, "--no-progress"]
    assert cli.main(argv + [a for s in settings for a in ("--set", s)]) == 0
    return out


NOTEBOOK_GROUPS = {"04_text_worlds.ipynb": "tiny_coin"}
"""Notebooks whose smoke run compiles the programs of a test group's run: 04 trains on the tiny
text/coin maps of `tiny_coin_run`."""


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's hook reads the groups
def pytest_collection_modifyitems(items):
    """The notebooks' smoke runs share compiled programs (01's tiny cartpole agent is 02's, 02's
    ablation is 03's): one worker runs them in order, so each program compiles once."""
    for item in items:
        if item.path.suffix == ".ipynb":
            group = NOTEBOOK_GROUPS.get(item.path.name, "notebooks")
            item.add_marker(pytest.mark.xdist_group(group))
