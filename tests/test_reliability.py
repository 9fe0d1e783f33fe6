"""Bad checkpoints and numerical failures give clear errors; the run keeps what it had."""

import os
import subprocess
import sys

import jax.numpy as jnp
import pytest
from host_worlds import WrappedCartPole

import worlds
from dreamer import config as config_lib
from dreamer.checkpoint import CheckpointError
from dreamer.train import Trainer, TrainingDiverged
from worlds.catch import Catch


def _cfg(*overrides):
    return config_lib.override(
        config_lib.tiny(),
        ["world=catch", "run.real_steps=96", "train.learning_starts=64",
         "run.eval_episodes=0",  # off: failures are tested; test_agent covers evaluation
         *overrides],
    )


def _truncate_all(folder):
    for root, _, files in os.walk(folder):
        for name in files:
            if name not in ("commit_success.txt",):
                with open(os.path.join(root, name), "r+b") as f:
                    f.truncate(max(0, os.path.getsize(f.name) // 3))


@pytest.mark.xdist_group("tiny_catch")  # the tiny catch programs, compiled once
def test_truncated_checkpoint_is_reported(tmp_path):
    Trainer(_cfg(), str(tmp_path)).run(progress=False)
    step_dir = tmp_path / "checkpoints" / "96" / "state"
    _truncate_all(step_dir)
    with pytest.raises(CheckpointError, match="corrupted"):
        Trainer(_cfg(), str(tmp_path), resume=True)


@pytest.mark.xdist_group("tiny_catch")  # the tiny catch programs, compiled once
def test_corrupted_record_is_reported(tmp_path):
    Trainer(_cfg(), str(tmp_path)).run(progress=False)
    (tmp_path / "checkpoints" / "96" / "record" / "metadata").write_text("{not json")
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        Trainer(_cfg(), str(tmp_path), resume=True)


class NaNCatch(Catch):
    """Catch whose reward turns NaN: the learner must stop and name the loss."""

    def _step(self, game, action, key):
        game, obs, reward, terminated = super()._step(game, action, key)
        return game, obs, jnp.where(terminated, jnp.nan, reward), terminated


@pytest.mark.xdist_group("tiny_catch")  # the learner's program is the tiny catch one
def test_non_finite_loss_stops_with_the_term_and_update(tmp_path):
    worlds.register("test/nan-catch", NaNCatch)
    cfg = _cfg("world=test/nan-catch", "run.checkpoint_interval=32", "run.real_steps=256")
    trainer = Trainer(cfg, str(tmp_path))
    with pytest.raises(TrainingDiverged, match=r"non-finite loss/value(, loss/value_prefix)? at update \d+"):
        trainer.run(progress=False)
    # the checkpoints written before the failure remain
    assert trainer.checkpointer.latest_step() is not None


class FailingHostWorld(WrappedCartPole):
    """A host world whose emulator dies at its 40th step."""

    crash_at = 40


def test_host_world_failure_names_world_and_step(tmp_path):
    worlds.register("test/failing", FailingHostWorld, kind="host")
    # checkpoints every 48 real steps: the failure at step 39 comes before the second one, so
    # the run writes one itself at the end of the last complete iteration (32)
    cfg = _cfg("world=test/failing", "run.num_envs=1", "run.checkpoint_interval=48",
               "run.real_steps=64")
    trainer = Trainer(cfg, str(tmp_path))
    from dreamer.train import WorldFailed

    with pytest.raises(WorldFailed, match=r"test/failing.* at real step 39: RuntimeError"):
        trainer.run(progress=False)
    assert trainer.checkpointer.latest_step() == 32  # no completed work is lost


@pytest.mark.xdist_group("tiny_catch")  # the tiny catch programs, compiled once
def test_same_seed_same_results(tmp_path):
    cfg = _cfg("run.real_steps=128", "run.eval_episodes=10", "run.eval_interval=64")
    first = Trainer(cfg, str(tmp_path / "a")).run(progress=False)
    second = Trainer(cfg, str(tmp_path / "b")).run(progress=False)
    a, b = first.to_json(), second.to_json()
    a.pop("wall_seconds"), b.pop("wall_seconds")
    assert a == b
    assert (tmp_path / "a" / "eval.csv").read_text() == (tmp_path / "b" / "eval.csv").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_arenas_are_capped_unless_the_user_set_them():
    code = "from dreamer.jax_setup import limit_malloc_arenas; print(limit_malloc_arenas())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    capped = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert capped.stdout.strip() == "True", capped.stderr
    kept = subprocess.run([sys.executable, "-c", code], env={**env, "MALLOC_ARENA_MAX": "4"},
                          capture_output=True, text=True)
    assert kept.stdout.strip() == "False", kept.stderr
