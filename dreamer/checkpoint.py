"""Checkpoints (the only module that imports orbax).

A checkpoint is one orbax step folder holding the run's array state (learner, replay, collector,
PRNG key) and a JSON record (ledger counters, loop counters, the config, and a host world's episodes
in progress where the world can be saved). Orbax writes each step to
a temporary folder and renames it when complete, so a kill mid-write leaves the previous checkpoint
usable; the newest `keep` are kept.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from dreamer.errors import UserError


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable, or does not fit the current config."""


class _ReadOnlyNotice(logging.Filter):
    """Drops orbax's notices that a read-only manager is read only ("Given directory is read
    only", "CheckpointManagerOptions.read_only=True, setting create=False" and the same for
    save_interval_steps): `eval` and `play` open runs read-only on purpose, and the notices told
    their users nothing."""

    _NOTICES = ("Given directory is read only", "CheckpointManagerOptions.read_only=True, setting")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(notice in message for notice in self._NOTICES)


logging.getLogger("absl").addFilter(_ReadOnlyNotice())


class Checkpointer:
    """Saves and restores `(state pytree, record dict)` pairs under `directory`."""

    def __init__(self, directory: str, keep: int, read_only: bool = False):
        """`read_only`: restore only; nothing in `directory` is created, pruned or written."""
        self.directory = os.path.abspath(directory)
        options = (ocp.CheckpointManagerOptions(read_only=True) if read_only else
                   ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any, record: dict) -> None:
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)
            ),
            force=True,
        )
        self.manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore_record(self, step: int | None = None) -> dict:
        step = self._step(step)
        try:
            path = os.path.join(self.directory, str(step), "record", "metadata")
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} has no readable record ({e}); it is "
                "truncated or corrupted: delete that step folder to fall back to an older one"
            ) from None

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores into the structure, shapes and dtypes of `target`."""
        step = self._step(step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        try:
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()
                ),
            )
        except Exception as e:  # orbax raises many types for damaged or mismatched files
            raise CheckpointError(
                f"cannot restore checkpoint {step} from {self.directory}: "
                f"{type(e).__name__}: {str(e).splitlines()[0][:300]}. The checkpoint is corrupted "
                "or was written by a run with a different world or network shape: delete "
                f"{os.path.join(self.directory, str(step))} to fall back to an older checkpoint, "
                "or start a new run in another folder."
            ) from None
        return restored["state"], dict(restored["record"])

    def restore_part(self, target: dict, step: int | None = None) -> dict:
        """Restores only the entries of the array state that `target` names (e.g. `{"train":
        train_state}`), into their structure, shapes, dtypes and shardings; the rest of the
        checkpoint (the replay) is not read."""
        step = self._step(step)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(
                    abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                    partial_restore=True)))
        except Exception as e:  # orbax raises many types for damaged or mismatched files
            raise CheckpointError(
                f"cannot restore checkpoint {step} from {self.directory}: "
                f"{type(e).__name__}: {str(e).splitlines()[0][:300]}. The checkpoint is corrupted "
                "or was written by a run with a different world or network shape."
            ) from None
        return dict(restored["state"])

    def _step(self, step):
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return step

    def close(self):
        self.manager.close()
