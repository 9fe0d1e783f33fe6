"""Test session setup: one persistent XLA cache per test run, shared by the pytest-xdist workers
and every subprocess they start (CLI runs, notebook kernels), so identical programs compile once."""

import collections
import os
import tempfile

import chex
import pytest

from dreamer.jax_setup import enable_compilation_cache

TEST_XLA_FLAGS = "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false"
"""XLA flags of the test session (and of every subprocess it starts), unless XLA_FLAGS is set.
Most of the suite's time is XLA compiling small programs that then run for seconds. Measured on
this 2-core CPU, a `tiny` catch run of 1,056 real steps (`Trainer`, cold cache): XLA's compile
time 33.5 s with the default flags, 20.8 s with these, and the run 59.5 s -> 52.3 s in all (its
1,000 updates run about 1.2x slower). Level 0 compiles faster still (8.1 s) but runs 3.6x slower,
which the learning tests cannot afford. The flags change how much LLVM optimises, not what any
program computes: results match the default flags' to rounding, not bit for bit (bit-identity
is asserted between runs of one session, under the same flags)."""
os.environ.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)

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


@pytest.fixture
def limit_traces(monkeypatch):
    """`limit_traces(train_many=1, collect=1, reanalyse_pass=1)`: the programs built afterwards
    in the test fail on a trace past their limit (`chex.assert_max_traces`), so the learner
    phase, each collection round's length and the buffer-wide pass compile once for the whole
    test. The session's program cache is set aside so the test's trainers build their own."""
    from dreamer import actor, learner, programs, reanalyse

    factories = {"train_many": (learner, "make_train_many"), "collect": (actor, "make_collect"),
                 "reanalyse_pass": (reanalyse, "make_reanalyse_pass")}

    def install(**limits):
        monkeypatch.setattr(programs, "_PROGRAMS", collections.OrderedDict())
        for name, limit in {"train_many": 1, "collect": 1, "reanalyse_pass": 1, **limits}.items():
            module, attribute = factories[name]
            factory = getattr(module, attribute)
            monkeypatch.setattr(module, attribute, lambda *a, _f=factory, _n=limit, **k:
                                chex.assert_max_traces(_f(*a, **k), n=_n))

    return install
