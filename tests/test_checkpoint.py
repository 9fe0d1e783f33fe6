"""Checkpoints of a run: pruning to run.keep_checkpoints, and resuming past a damaged newest one."""

import os
import re
import shutil

import jax
import numpy as np
import pytest

from dreamer import config as config_lib
from dreamer.checkpoint import CheckpointError
from dreamer.train import Trainer


def tiny_catch(*overrides):
    return config_lib.override(config_lib.tiny(), ["world=catch", *overrides])


def _steps(folder):
    return sorted(int(d) for d in os.listdir(folder) if d.isdigit())


def _params_bytes(trainer):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(trainer.train_state)]


@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_keep_checkpoints_prunes_and_a_damaged_newest_falls_back_by_deleting_it(tmp_path):
    """A run checkpointing every 32 real steps up to 128 with run.keep_checkpoints=2 writes 4
    checkpoints and keeps only the newest 2 after each save. Damaging the newest (its array
    state truncated) makes --resume fail with `cannot restore checkpoint 128 ...`, naming the step
    folder to delete: resume does not fall back by itself. Once that folder is deleted, as the
    message says, resume starts from the older checkpoint (96) and finishes bit-identical to the
    run that was never damaged."""
    # evaluation off: not what is tested here (test_agent's resume tests cover it)
    cfg = tiny_catch("run.real_steps=128", "train.learning_starts=96",
                     "run.eval_episodes=0",  # off: not tested here; test_agent resumes with it on
                     "run.checkpoint_interval=32", "run.keep_checkpoints=2")
    folder = str(tmp_path / "checkpoints")
    trainer = Trainer(cfg, str(tmp_path))
    kept = []
    save = trainer.checkpointer.save

    def save_and_list(step, state, record):
        save(step, state, record)
        kept.append(_steps(folder))

    trainer.checkpointer.save = save_and_list
    straight = trainer.run(progress=False)
    assert kept == [[32], [32, 64], [64, 96], [96, 128]]
    assert _steps(folder) == [96, 128]
    expected = _params_bytes(trainer)

    newest = os.path.join(folder, "128")
    for root, _, files in os.walk(os.path.join(newest, "state")):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(os.path.getsize(f.name) // 3)
    with pytest.raises(CheckpointError) as error:
        Trainer(cfg, str(tmp_path), resume=True)
    message = str(error.value)
    assert message.startswith(f"cannot restore checkpoint 128 from {folder}: ")
    assert re.search(f"The checkpoint is corrupted .* delete {re.escape(newest)} to fall back to an "
                     "older checkpoint", message), message

    shutil.rmtree(newest)
    resumed = Trainer(cfg, str(tmp_path), resume=True)
    assert resumed.ledger.env_steps == 96
    final = resumed.run(progress=False)
    # 2 learning phases (after 96 and 128 real steps) of 32 updates; simulated: 128 x 8 acting
    # + 64 x 32 x 3 unrolled + 64 x 16 x 4 x 8 reanalysed
    assert (final.env_steps, final.updates, final.simulated) == (
        straight.env_steps, straight.updates, straight.simulated) == (
        128, 64, 128 * 8 + 64 * 32 * 3 + 64 * 16 * 4 * 8)
    assert _params_bytes(resumed) == expected
    assert _steps(folder) == [96, 128]


def test_a_read_only_open_prints_no_orbax_warning(tmp_path, caplog):
    """`eval` and `play` open runs read-only on purpose: orbax's "Given directory is read only"
    warning is dropped, and other absl warnings still pass."""
    import logging

    import jax.numpy as jnp

    from dreamer.checkpoint import Checkpointer

    Checkpointer(str(tmp_path / "ckpt"), keep=1).save(1, {"x": jnp.zeros(2)}, {"step": 1})
    with caplog.at_level(logging.WARNING, logger="absl"):
        reader = Checkpointer(str(tmp_path / "ckpt"), keep=1, read_only=True)
        assert reader.latest_step() == 1
        logging.getLogger("absl").warning("another warning")
    messages = [r.getMessage() for r in caplog.records]
    assert "another warning" in messages
    assert not any("read only" in m or "read_only" in m for m in messages), messages
