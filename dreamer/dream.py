"""`dreamer dream`: make a trained agent better with zero new real steps.

    dreamer dream --run RUN_DIR [--updates N | --passes P] [--out NEW_DIR] [--eval-every K]

loads a run's config, learner state and replay from its newest checkpoint and spends compute in
its learned model over the stored experience alone: learner updates (the run's own jitted
`train_many` program, with its per-update reanalysis) and buffer-wide reanalysis passes
(`dreamer.reanalyse`) that rewrite every stored row's policy target and root value with the
current target network. No world is stepped: no row is added to the replay, and the ledger's real
counts stay where they were while its simulated counts, its `updates` and its new `dream_updates`
grow, so the dream ratio rises at a fixed real budget.

The schedule (`plan_dream`): updates go in phases of the run's `updates_per_phase`. A pass of the
whole stored replay runs before the first phase, and again before each phase that follows a
target-network refresh (every `train.target_update_interval` updates). Why: a pass searches with
the target network, so a second pass before the next refresh would rewrite the same targets
(only the root noise differs) at the full cost of a pass; right after a refresh every stored row
gets the targets of the newest target network, which is how dreaming turns a better network into
better targets for the next updates. No pass closes the dream: the next dream or resumed training
starts from the replay as it is, and a dream starts with a pass. A dream's pass always covers every
stored row (in calls of `train.reanalyse_pass_chunk` roots); the training loop's own pass schedule
(`train.reanalyse_pass_interval`, `train.reanalyse_pass_rows`) does not apply.

The result is a run folder like any other: `dreamer eval`, `dreamer report`, `dreamer play
--agent` and `dreamer train --resume` accept it. Its checkpoints are keyed by env_steps +
dream_updates (`train.checkpoint_step`), so the dream's checkpoint is the newest one. With `--out`
the run's folder is only read, and the new folder gets the run's config, its evaluation and metric
rows and the dream's checkpoint.

The dream evaluates with the run's own evaluation (`Trainer.evaluate`, whose key depends on the
seed and the real steps alone: every evaluation of one dream plays the same episodes, so its
returns differ by the parameters only) before it starts, where the newest evaluation is not of
the restored state, every `--eval-every` updates and at the end; each evaluation is followed by a
checkpoint, and a kill loses at most the work since the last one. Keys derive from the seed and
the update count, so the same run and request dream the same parameters, and a dream resumed from
a checkpoint it wrote continues as the uninterrupted one would have.

Imports nothing heavy at module level (the CLI imports this module to build its parser).
"""

from __future__ import annotations

import os
import shutil

from dreamer.dream_plan import (  # noqa: F401  (the dream's schedule, re-exported)
    DEFAULT_UPDATES_FACTOR,
    DREAM_KEY_STREAM,
    DreamError,
    DreamPlan,
    default_updates,
    dream_key,
    plan_dream,
)

COPIED_FILES = ("eval.csv", "metrics.jsonl", "vocabulary.json")
"""What a dream into a new folder takes from the run besides its checkpoint (the config and the
ledger are written by the dream itself)."""


def read_run(run_dir: str):
    """(config, ledger) of the run in `run_dir` at its newest checkpoint, read only.

    Raises:
      DreamError: not a run folder, no finished checkpoint, or too little stored experience
        (fewer real steps than `train.learning_starts`).
      CheckpointError: an unreadable checkpoint record.
    """
    from dreamer import agent as agent_lib
    from dreamer.checkpoint import Checkpointer
    from dreamer.ledger import SampleLedger

    try:
        config = agent_lib.read_config(run_dir)
    except agent_lib.NotARunError:
        raise DreamError(f"--run {run_dir}: not a dreamer run folder (no config.json / "
                         "checkpoints); train one with `dreamer train --out RUN_DIR`") from None
    if not _has_checkpoint(run_dir):
        raise DreamError(f"--run {run_dir}: no finished checkpoint in {run_dir}/checkpoints (the "
                         "run was stopped before its first one); train it further first")
    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"), 1, read_only=True)
    try:
        ledger = SampleLedger.from_json(checkpointer.restore_record()["ledger"])
    finally:
        checkpointer.close()
    if ledger.env_steps < config.train.learning_starts:
        raise DreamError(
            f"--run {run_dir}: {ledger.env_steps} real steps stored, fewer than "
            f"train.learning_starts={config.train.learning_starts}: too little experience to "
            "dream on; train it further first")
    return config, ledger


def _has_checkpoint(folder: str) -> bool:
    path = os.path.join(folder, "checkpoints")
    return os.path.isdir(path) and any(name.isdigit() for name in os.listdir(path))


def prepare_out(run_dir: str, out_dir: str) -> None:
    """Starts a new run folder `out_dir` with the run's evaluation and metric rows (and a token
    world's vocabulary); the checkpoint, config and ledger come from the dream. `run_dir` is
    only read. A folder left by a dream killed before its first checkpoint is started again.

    Raises:
      DreamError: `out_dir` already holds a run (a finished checkpoint) or is a file.
    """
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DreamError(f"--out {out_dir}: a file, not a folder; choose another folder")
    if _has_checkpoint(out_dir):
        raise DreamError(f"--out {out_dir}: already holds a run; dream it in place with --run "
                         f"{out_dir}, or choose a new folder")
    os.makedirs(out_dir, exist_ok=True)
    for name in COPIED_FILES:
        source, target = os.path.join(run_dir, name), os.path.join(out_dir, name)
        if os.path.isfile(source):
            shutil.copyfile(source, target)
        elif os.path.exists(target):
            os.remove(target)  # a killed earlier dream's copy


def dream(run_dir: str, updates: int | None = None, passes: int | None = None,
          out_dir: str | None = None, eval_every: int | None = None, progress: bool = False,
          stop_flag=None):
    """Dreams on the run in `run_dir` (see the module docstring); returns (ledger, plan, done):
    the final ledger, the plan, and the phases done (fewer than planned when `stop_flag`
    stopped it).

    Args:
      run_dir: a run folder with a finished checkpoint.
      updates, passes: the dream's size (see `plan_dream`); neither: `default_updates`.
      out_dir: the run folder written (default `run_dir`, continuing that run).
      eval_every: evaluate and checkpoint every this many dreamed updates (default: at the
        end only).
      progress: print a line per evaluation.
      stop_flag: optional callable; when it returns True after a phase, the dream checkpoints
        and stops.

    Raises:
      DreamError: a bad request or run folder; the checkpoint's own errors (CheckpointError).
    """
    from dreamer.config import updates_per_phase
    from dreamer.train import MetricsWriter, Trainer

    config, saved = read_run(run_dir)
    chunk = updates_per_phase(config)
    if updates is None and passes is None:
        updates = default_updates(saved.updates, chunk)
    # a bad request fails here, before anything is written
    plan = plan_dream(chunk, config.train.target_update_interval, saved.updates, updates, passes,
                      eval_every)
    out_dir = run_dir if out_dir is None else out_dir
    in_place = os.path.realpath(out_dir) == os.path.realpath(run_dir)
    if not in_place:
        prepare_out(run_dir, out_dir)
    trainer = Trainer(config, out_dir, resume=True, restore_from=None if in_place else run_dir)
    writer = MetricsWriter(out_dir)
    try:
        done = _run_plan(trainer, writer, plan, progress, stop_flag)
    finally:
        writer.close()
        trainer.close()
    return trainer.ledger, plan, done


def _run_plan(trainer, writer, plan: DreamPlan, progress: bool, stop_flag) -> int:
    """Runs the plan's phases on `trainer`; returns how many ran."""
    ledger, loop = trainer.ledger, trainer.loop
    if (loop.last_eval, loop.last_eval_dream_updates) != (ledger.env_steps, ledger.dream_updates):
        _evaluate(trainer, writer, progress, "before dreaming")
    elif progress:  # the run's own evaluation at this point is the one to start from
        _show_eval(trainer, "before dreaming (the run's last evaluation)")
    for phase in range(plan.phases):
        metrics = trainer.dream_phase(plan.pass_before[phase])
        writer.scalars(ledger.env_steps, metrics, ledger.dream_updates)
        if stop_flag is not None and stop_flag():
            trainer.save()
            return phase + 1
        if plan.evaluate_after[phase]:
            _evaluate(trainer, writer, progress, f"after {(phase + 1) * plan.updates_per_phase} "
                                                 "dreamed updates")
            trainer.save()
    return plan.phases


def _evaluate(trainer, writer, progress: bool, when: str) -> None:
    trainer.record_eval(writer)
    if progress:
        _show_eval(trainer, when)


def _show_eval(trainer, when: str) -> None:
    ledger = trainer.ledger
    if trainer.config.run.eval_episodes:
        print(f"dreamer dream: {when}: return {ledger.eval_mean_return:.3f} over "
              f"{ledger.eval_episodes} episodes ({ledger.updates} updates, dream ratio "
              f"{ledger.dream_ratio:,.1f}, {ledger.env_steps} real steps)", flush=True)


def add_arguments(parser) -> None:
    """Adds `dreamer dream`'s options to an argparse (sub)parser."""
    parser.add_argument("--run", required=True, metavar="RUN_DIR",
                        help="the trained run to dream on (its newest checkpoint)")
    parser.add_argument("--updates", type=int, default=None, metavar="N",
                        help="learner updates to make, a multiple of the run's updates per "
                             "phase; a whole-replay reanalysis pass runs first and after each "
                             "target-network refresh (default: "
                             f"{DEFAULT_UPDATES_FACTOR}x the run's own updates)")
    parser.add_argument("--passes", type=int, default=None, metavar="P",
                        help="instead of --updates: P whole-replay reanalysis passes, each "
                             "followed by the phases up to the next target-network refresh")
    parser.add_argument("--out", default=None, metavar="NEW_DIR",
                        help="write the dreamed run here and leave RUN_DIR as it is (default: "
                             "continue RUN_DIR itself)")
    parser.add_argument("--eval-every", type=int, default=None, metavar="K",
                        help="evaluate and checkpoint every K dreamed updates (default: at the "
                             "end only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")


__all__ = ["DreamError", "DreamPlan", "dream", "plan_dream"]
