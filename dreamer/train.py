"""The training run: collect with search, learn from replay, evaluate, checkpoint, keep the ledger.

The host loop only orchestrates jitted calls (collect, add, train chunk, evaluate) and counts;
every count in the ledger is a static function of the config times the number of calls, so it is
exact. Keys derive from the seed and the iteration number, so a resumed run continues exactly.
The jitted programs are built in `dreamer.programs`, and the world is stepped and evaluated by the
collector for its kind (`dreamer.collect`).

Continual learning (`run.worlds`, `dreamer train --worlds A,B,C --real-steps-each N`): one agent
and one network learn the worlds in order, `run.real_steps_each` real steps each, every world
seen through one observation shape and action set (`worlds.padded`). The learner, its replay and
its programs are the run's; each world has its own collector. Phase i trains on world i; it ends
when the run's real steps reach (i + 1) x real_steps_each, with a greedy evaluation of the agent
on every world of the sequence (rows of `continual.csv`, `CONTINUAL_COLUMNS`: the matrix R[i, j]
of the return on world j after phase i), after which world i + 1 starts: its copies reset with
keys of their own, the acting temperature's schedule starts again (it spans a phase), and the
replay either keeps the earlier worlds' rows (`run.rehearsal`, the default: each stream's newest
row is then cut as a time limit, so no training window runs from one world into the next) or is
emptied (and the learner waits for `train.learning_starts` real steps of the new world again).
`eval.csv` evaluates the world being trained. The phase a checkpoint is in is saved with it
(`LoopState.phase`), so a stopped or killed run resumes in its phase, and a run stopped at a
phase's end makes that phase's evaluation first, as with a put-off evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import worlds
from dreamer import actor, dream_plan, learner, memory, parallel, reanalyse
from dreamer import collect as collect_lib
from dreamer import replay as replay_lib
from dreamer.checkpoint import Checkpointer, CheckpointError
from dreamer.collect import evaluate_policy, make_eval_world
from dreamer.config import Config, ConfigError, config_from_dict, flatten_config, updates_per_phase
from dreamer.errors import DeviceLayoutError, TrainingDiverged, UserError
from dreamer.ledger import EVAL_COLUMNS, SampleLedger
from dreamer.networks import make_model
from dreamer.programs import compiled_programs
from worlds.padded import PaddedWorld, pad_worlds

# Fields that may differ between a checkpoint and a resumed run; any other difference is refused.
RESUMABLE_FIELDS = {
    "run.real_steps",
    "run.eval_interval",
    "run.eval_episodes",
    "run.eval_temperature",
    "run.checkpoint_interval",
    "run.keep_checkpoints",
    "run.devices",
}


class WorldFailed(UserError, RuntimeError):
    """A host world raised during `step`; the message names the world and the real step."""


def check_real_budget(config: Config) -> None:
    """Refuses a real budget the copies, stepped together, cannot meet exactly.

    The budget is a hard cap: the last collection takes only the steps left,
    `(run.real_steps - env_steps) // run.num_envs` per copy, so it must be a multiple of
    `run.num_envs` (it need not be one of a whole round, `num_envs x collect_steps`).

    Raises:
      ConfigError: `run.real_steps` is not a multiple of `run.num_envs`; the message names the
        nearest budgets that are.
    """
    real, copies = config.run.real_steps, config.run.num_envs
    if real % copies:
        below, above = real // copies * copies, (real // copies + 1) * copies
        fix = f"{below} or {above}" if below else f"{above}"
        raise ConfigError(f"run.real_steps={real} is not a multiple of run.num_envs={copies} "
                          f"(the copies step together): use {fix}")


def config_mismatch(saved: dict, current: dict) -> list[str]:
    """Fields (dotted) whose values differ, except those a resume may change."""
    a, b = flatten_config(saved), flatten_config(current)
    return sorted(
        k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_FIELDS
    )


def make_training_world(config: Config, copies: int | None = None):
    """The world copies to collect from: one JAX world (vmapped over copies), or a host world with
    `copies` copies (default `run.num_envs`; a distributed run gives each process its share).
    Built with `config.world_options` over the world's training-only options (the registry's
    `training=True`: e.g. Atari's life loss and reward clipping), which evaluation copies lack."""
    copies = config.run.num_envs if copies is None else copies
    return worlds.make(config.world, num_envs=copies, training=True, **config.world_kwargs())


def world_settings(config: Config) -> dict:
    """{world: {"training": options, "evaluation": options}} for the run's world (each world of a
    continual sequence): every option its training and evaluation copies are built with, the
    defaults included (`worlds.settings`). The protocol the run's counts and returns were
    measured under, e.g. Atari's no-op starts, sticky actions and episode cap, with life loss and
    reward clipping in training only; the trainer writes it into ledger.json."""
    options = config.world_kwargs()
    return {name: {"training": worlds.settings(name, training=True, **options),
                   "evaluation": worlds.settings(name, evaluation=True, **options)}
            for name in (config.run.world_sequence or (config.world,))}


def make_continual_worlds(config: Config) -> list[PaddedWorld]:
    """The worlds of a continual run (`run.worlds`), each built with `config.world_options` and
    seen through the sequence's common interface (`worlds.padded.pad_worlds`).

    Raises:
      IncompatibleWorldsError: a host world, or worlds that cannot share one network.
      WorldOptionError: an option one of the worlds does not take.
    """
    return pad_worlds([worlds.make(name, **config.world_kwargs())
                       for name in config.run.world_sequence])


CONTINUAL_COLUMNS = ("phase,trained_world,eval_world,env_steps,updates,mean_return,std_return,"
                     "episodes")
"""The header of a continual run's continual.csv: after phase `phase` (0-based), trained on
`trained_world`, the agent's greedy evaluation on `eval_world` (every world of the sequence, in
order), at `env_steps` real steps and `updates` learner updates."""


def evaluation_key(seed: int, env_steps: int):
    """The key of the evaluation after `env_steps` real steps of the run seeded `seed` (the same
    in a run and in `dreamer eval` of its checkpoint)."""
    return jax.random.fold_in(jax.random.split(jax.random.key(seed), 4)[3], env_steps)


def _settings(config: Config, names) -> dict:
    """{"section.field": value} of a config, for messages."""
    return {n: getattr(getattr(config, n.split(".")[0]), n.split(".")[1]) for n in names}


def checkpoint_step(ledger: SampleLedger) -> int:
    """The step a checkpoint of the run's state is saved under: env_steps + dream_updates.

    A run that never dreamed saves under its real steps, as it always has; updates made by
    `dreamer dream` (no real step) then move the step on, so a dream at a fixed real budget
    writes a newer checkpoint, and a later resume keeps the steps increasing (both terms only
    grow)."""
    return ledger.env_steps + ledger.dream_updates


def _drop_rows_after(directory: str, env_steps: int, dream_updates: int = 0) -> None:
    """Removes metric rows written after the checkpoint a run resumes from (they are redone):
    rows past its real steps, or past its dreamed updates (rows written before dreaming
    existed count 0 of them)."""
    path = os.path.join(directory, "metrics.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            lines = [line for line in f if _row_within(json.loads(line), env_steps, dream_updates)]
        with open(path, "w") as f:
            f.writelines(lines)
    path = os.path.join(directory, "eval.csv")
    if os.path.exists(path):
        with open(path) as f:
            lines = f.readlines()
        columns = lines[0].strip().split(",") if lines else []
        kept = [r for r in lines[1:]
                if _row_within(dict(zip(columns, r.strip().split(","), strict=False)), env_steps,
                               dream_updates)]
        with open(path, "w") as f:
            f.writelines(lines[:1] + kept)


def _append_continual_rows(directory: str, rows: list[str]) -> None:
    """Appends rows to the run's continual.csv (written with its header when new)."""
    path = os.path.join(directory, "continual.csv")
    new = not os.path.exists(path)
    with open(path, "a") as f:
        f.write((CONTINUAL_COLUMNS + "\n" if new else "") + "".join(r + "\n" for r in rows))


def _drop_continual_rows(directory: str, phases_ended: int) -> None:
    """Keeps the continual.csv rows of the phases a resumed checkpoint had ended (the others
    are redone)."""
    path = os.path.join(directory, "continual.csv")
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.readlines()
    kept = [r for r in lines[1:] if r.strip() and int(r.split(",")[0]) < phases_ended]
    with open(path, "w") as f:
        f.writelines(lines[:1] + kept)


def _cut_streams(replay: replay_lib.ReplayState) -> replay_lib.ReplayState:
    """Marks each stream's newest row as the end of its episode (a time-limit cut, where it is
    not terminal), so no training window runs on into the rows that follow (another world's)."""
    newest = (replay.num_rows - 1) % replay.capacity
    rows = replay.rows
    return replay.replace(rows=rows._replace(truncated=rows.truncated.at[newest].set(
        rows.truncated[newest] | ~rows.terminated[newest])))


def _row_within(row: dict, env_steps: int, dream_updates: int) -> bool:
    return (int(row["env_steps"]) <= env_steps
            and int(row.get("dream_updates", 0)) <= dream_updates)


DREAM_COLUMN = "dream_updates"


class MetricsWriter:
    """metrics.jsonl + eval.csv + TensorBoard event files in the run folder.

    eval.csv gets a last column, `dream_updates` (the ledger's updates made by `dreamer dream`),
    from the first evaluation after a dream on: the file is rewritten once with the column
    added (0 in the rows before). A run that never dreamed keeps the six columns it always had.
    metrics.jsonl rows carry `dream_updates` likewise once it is not 0, and TensorBoard's step
    is the checkpoint step (`checkpoint_step`), which a dream moves on at a fixed real budget.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self.enabled = parallel.is_primary()  # in a distributed run, process 0 writes
        if not self.enabled:
            return
        self.jsonl = open(os.path.join(directory, "metrics.jsonl"), "a")
        eval_path = os.path.join(directory, "eval.csv")
        new = not os.path.exists(eval_path)
        self.eval_csv = open(eval_path, "a")
        if new:
            self.eval_csv.write(EVAL_COLUMNS + "\n")
            self.eval_csv.flush()
        with open(eval_path) as f:
            self.dream_column = DREAM_COLUMN in f.readline().strip().split(",")
        try:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(os.path.join(directory, "tb"))
        except ImportError:  # pragma: no cover - tensorboardX is a dependency
            self.tb = None

    def scalars(self, step: int, values: dict[str, float], dream_updates: int = 0) -> None:
        """One metrics row at `step` real steps (and `dream_updates` dreamed updates)."""
        if not self.enabled:
            return
        dreamed = {DREAM_COLUMN: dream_updates} if dream_updates else {}
        self.jsonl.write(json.dumps({"env_steps": step, **dreamed, **values}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step + dream_updates)

    def evaluation(self, ledger: SampleLedger) -> None:
        if not self.enabled:
            return
        if ledger.dream_updates and not self.dream_column:
            self._add_dream_column()
        row = ledger.eval_row()
        self.eval_csv.write(row + (f",{ledger.dream_updates}\n" if self.dream_column else "\n"))
        self.eval_csv.flush()
        self.scalars(ledger.env_steps, {"eval/mean_return": ledger.eval_mean_return,
                                        "eval/dream_ratio": ledger.dream_ratio},
                     ledger.dream_updates)

    def _add_dream_column(self) -> None:
        """Rewrites eval.csv with the `dream_updates` column (0 in the rows written so far)."""
        path = os.path.join(self.directory, "eval.csv")
        self.eval_csv.close()
        with open(path) as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
        lines = [f"{lines[0]},{DREAM_COLUMN}", *(f"{line},0" for line in lines[1:])]
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)
        self.eval_csv = open(path, "a")
        self.dream_column = True

    def close(self):
        if not self.enabled:
            return
        self.jsonl.close()
        self.eval_csv.close()
        if self.tb is not None:
            self.tb.close()


@dataclasses.dataclass
class LoopState:
    """Host-side counters saved with each checkpoint."""

    iteration: int = 0
    update_credit: float = 0.0
    next_eval: int = 0
    next_checkpoint: int = 0
    last_eval: int = -1
    last_eval_dream_updates: int = 0  # with last_eval: the state the newest evaluation measured
    recent_returns: list = dataclasses.field(default_factory=list)
    phase: int = 0  # continual runs: phases ended (evaluated on every world); 0 otherwise


class Trainer:
    """One training run in `out_dir`. Use `run()`; `evaluate()` for a standalone evaluation;
    `dreamer.dream` drives one with `train_phase` and `reanalyse_pass` instead of `run()`."""

    def __init__(self, config: Config, out_dir: str, resume: bool = False,
                 restore_from: str | None = None, announce: Callable[[], None] | None = None):
        """Args:
          config: the run's config.
          out_dir: the run folder written to.
          resume: continue from the newest checkpoint.
          restore_from: with `resume`, the run folder whose newest checkpoint is restored (read
            only), when it is not `out_dir` (`dreamer dream --out`); default `out_dir`.
          announce: called once the world, the device layout and the network are known good, as
            the run folder is made (the CLI's "training ..." line); a refused run calls nothing.
        """
        check_real_budget(config)
        self.config = config
        self.out_dir = out_dir
        self.restore_from = out_dir if restore_from is None else restore_from
        c = config
        # a continual run's worlds, in order (see the module docstring); [] for one world
        self.sequence = make_continual_worlds(c) if c.run.world_sequence else []
        # host worlds: each process of a distributed run steps its own share of the copies
        self.world = self.sequence[0] if self.sequence else make_training_world(
            c, c.run.num_envs // jax.process_count())
        self.spec = self.world.spec
        self.steps_per_iteration = c.run.num_envs * c.run.collect_steps  # of a full round
        self.chunk = updates_per_phase(c)
        self.cost = learner.update_cost(c)
        try:
            self.mesh = parallel.make_mesh(c.run.devices)
        except ValueError as e:
            raise DeviceLayoutError(str(e)) from None
        self._check_layout()
        make_model(c.model, self.spec)  # refuses a network the world cannot feed, in one line
        os.makedirs(out_dir, exist_ok=True)  # once the world, the layout, the model are known good
        if announce is not None:
            announce()
        parallel.sync_processes("dreamer: start")
        init_key, collector_key, self.loop_key, _ = jax.random.split(  # the 4th: evaluation_key
            jax.random.key(c.seed), 4
        )
        self._collector_key = collector_key
        example = np.zeros((1, *self.spec.observation_shape), self.spec.observation_dtype)
        self.programs = programs = compiled_programs(c, self.world, self.mesh)
        self.sequence_programs = [programs] + [
            compiled_programs(c, world, self.mesh, shared=programs) for world in self.sequence[1:]]
        self.model = programs.model
        self.train_state = programs.new_train_state(init_key, example)
        self.replay = programs.new_replay()
        self._add, self._train_many = programs.add, programs.train_many
        self._reanalyse = programs.reanalyse_pass
        self._learner_checked = self._pass_checked = False  # see memory.check_fits
        self.collector = collect_lib.make_collector(c, self.world, programs, self.mesh,
                                                    collector_key)
        self.train_state, self.replay = parallel.committed((self.train_state, self.replay),
                                                             self.mesh)
        self.ledger = SampleLedger(world=c.run.worlds or c.world, seed=c.seed,
                                   config=c.to_dict())
        self.loop = LoopState(next_eval=c.run.eval_interval, next_checkpoint=c.run.checkpoint_interval)
        self.checkpointer = Checkpointer(os.path.join(out_dir, "checkpoints"), c.run.keep_checkpoints)
        self._wall_offset = 0.0
        self._start = time.perf_counter()
        if resume:
            self._restore()
        self.ledger.world_settings = world_settings(c)
        if parallel.is_primary():
            with open(os.path.join(out_dir, "config.json"), "w") as f:
                json.dump(c.to_dict(), f, indent=2)
            self._save_vocabulary()

    def _save_vocabulary(self) -> None:
        """Token worlds: the run keeps the vocabulary and command list its observations and
        actions index, so a trained agent can be read (and played) without rebuilding them."""
        vocabulary = getattr(self.world, "vocabulary", None)
        if vocabulary is None:
            return
        with open(os.path.join(self.out_dir, "vocabulary.json"), "w") as f:
            json.dump({"world": self.config.world, "vocabulary": list(vocabulary),
                       "actions": list(self.spec.action_names)}, f)

    def _check_layout(self) -> None:
        c = self.config
        if self.mesh is None:
            return
        devices = self.mesh.size
        for name, value in (("run.num_envs", c.run.num_envs), ("train.batch_size", c.train.batch_size)):
            if value % devices:
                raise DeviceLayoutError(
                    f"{name}={value} does not split over {devices} devices; make it a multiple "
                    f"of {devices}, or set run.devices=1"
                )
        collect_lib.collector_type(self.world).check_layout(c)

    # --- state <-> checkpoint ---------------------------------------------------------------
    def _array_state(self):
        return {"train": self.train_state, "replay": self.replay,
                "collector": self.collector.state}

    def save(self, host_world: bool = True) -> None:
        """Checkpoints the run; `host_world=False` leaves a host world's episodes out (they
        restart on resume), for a save between two steps of an unfinished iteration."""
        self.ledger.wall_seconds = self._wall()
        record = {
            "ledger": self.ledger.to_json(),
            "loop": dataclasses.asdict(self.loop),
            "config": self.config.to_dict(),
            "host_world": self.collector.saved_episodes() if host_world else None,
        }
        self.checkpointer.save(checkpoint_step(self.ledger), self._array_state(), record)
        if parallel.is_primary():
            self.ledger.write(self.out_dir)

    def _restore_arrays(self, checkpointer: Checkpointer, step: int):
        """The checkpoint's array state and record. A checkpoint written before the replay kept
        its rows' target versions (`ReplayState.target_version`) restores with every row's
        targets marked as the acting search's (-1), which is what they were then."""
        try:
            return checkpointer.restore(self._array_state(), step)
        except CheckpointError as error:
            legacy = self._array_state()
            fields = dataclasses.fields(self.replay)
            legacy["replay"] = {f.name: getattr(self.replay, f.name) for f in fields
                                if f.name != "target_version"}
            try:
                state, record = checkpointer.restore(legacy, step)
            except CheckpointError:
                raise error from None
            state["replay"] = self.replay.replace(**state["replay"])  # target_version: all -1
            return state, record

    def _restore(self) -> None:
        if self.restore_from == self.out_dir:
            self._restore_from(self.checkpointer)
            return
        source = Checkpointer(os.path.join(self.restore_from, "checkpoints"), 1, read_only=True)
        try:
            self._restore_from(source)
        finally:
            source.close()

    def _restore_from(self, checkpointer: Checkpointer) -> None:
        step = checkpointer.latest_step()
        if step is None:
            raise CheckpointError(
                f"--resume: no checkpoint in {self.restore_from}/checkpoints; it is not a dreamer "
                "run folder or the run was killed before its first checkpoint (start it without "
                "--resume)"
            )
        record = checkpointer.restore_record(step)
        # A field added to the config after the checkpoint was written takes its default, which
        # is how runs behaved before it existed; only values the checkpoint states are compared.
        saved_config = config_from_dict(record["config"]).to_dict()
        mismatch = config_mismatch(saved_config, self.config.to_dict())
        if mismatch:
            saved, now = flatten_config(saved_config), flatten_config(self.config.to_dict())
            detail = ", ".join(f"{k} (checkpoint {saved.get(k)!r}, now {now.get(k)!r})"
                               for k in mismatch[:6])
            raise CheckpointError(
                f"--resume: the config does not match the checkpoint in {self.restore_from}: "
                f"{detail}. Only {', '.join(sorted(RESUMABLE_FIELDS))} may change on resume."
            )
        if self.sequence:  # the collector saved is the world of the checkpoint's phase
            self._use_world(self._active_world(record["loop"].get("phase", 0)))
        state, record = self._restore_arrays(checkpointer, step)
        self.train_state, self.replay = state["train"], state["replay"]
        if not self.collector.restore(state["collector"], record, self.restore_from):
            self.replay = _cut_streams(self.replay)  # the world restarts its episodes
        self.ledger = SampleLedger.from_json(record["ledger"])
        self.ledger.config = self.config.to_dict()
        self.loop = LoopState(**record["loop"])
        self._wall_offset = self.ledger.wall_seconds
        if parallel.is_primary():
            _drop_rows_after(self.out_dir, self.ledger.env_steps, self.ledger.dream_updates)
            if self.sequence:
                _drop_continual_rows(self.out_dir, self.loop.phase)

    # --- the loop -------------------------------------------------------------------------------
    def _wall(self) -> float:
        return self._wall_offset + (time.perf_counter() - self._start)

    def round_length(self) -> int:
        """Steps a copy of the next collection: `run.collect_steps`, or, where less of the real
        budget is left, only those (`check_real_budget` makes it a whole number per copy)."""
        c = self.config
        left = self._budget_end() - self.ledger.env_steps
        return max(0, min(c.run.collect_steps, left // c.run.num_envs))

    # --- continual runs -------------------------------------------------------------------------
    def _budget_end(self) -> int:
        """The real steps at which the current collection must stop: the run's budget, or in a
        continual run the end of the world being trained."""
        c = self.config
        if not self.sequence:
            return c.run.real_steps
        return (self._active_world(self.loop.phase) + 1) * c.run.real_steps_each

    def _active_world(self, phase: int) -> int:
        """The world trained while `phase` phases have ended (the last after the run's end)."""
        return min(phase, len(self.sequence) - 1)

    def _phase_start(self) -> int:
        """Real steps when the world being trained started (0 in a single-world run)."""
        if not self.sequence:
            return 0
        return self._active_world(self.loop.phase) * self.config.run.real_steps_each

    def _use_world(self, index: int) -> None:
        """Makes world `index` of the sequence the one collected from, with fresh copies (keys
        of their own: the run's collector key folded with the index; world 0's is the run's)."""
        self.world = self.sequence[index]
        self.programs = self.sequence_programs[index]
        key = self._collector_key if index == 0 else jax.random.fold_in(self._collector_key, index)
        self.collector = collect_lib.make_collector(self.config, self.world, self.programs,
                                                    self.mesh, key)

    def dream_phase(self, pass_before: bool) -> dict:
        """One dreamed learner phase on the replay alone, on `dreamer dream`'s keys
        (`dream_plan.dream_key`): a whole-replay reanalysis pass first with `pass_before`, then
        the run's learner phase, counted as dream_updates. Returns the phase's mean metrics."""
        c, ledger = self.config, self.ledger
        metrics = {}
        if pass_before:
            chunks = reanalyse.pass_chunks(c, self.stored_rows(), whole=True)
            metrics["reanalyse_pass/chunks"] = self.reanalyse_pass(
                dream_plan.dream_key(c.seed, ledger.updates, reanalysis=True), chunks)
        phase_metrics = self.train_phase(
            dream_plan.dream_key(c.seed, ledger.updates, reanalysis=False))
        ledger.dream_updates += self.chunk
        metrics.update({k: float(np.mean(v)) for k, v in phase_metrics.items() if k != "finite"})
        metrics["dream_ratio"] = ledger.dream_ratio
        return metrics

    def _dream_between(self, writer: MetricsWriter) -> None:
        """`run.dream_between` learner updates on the replay alone, on `dreamer dream`'s
        schedule (`dream_plan.plan_dream`), counted as dream_updates."""
        plan = dream_plan.plan_dream(self.chunk, self.config.train.target_update_interval,
                                     self.ledger.updates, updates=self.config.run.dream_between)
        for pass_before in plan.pass_before:
            writer.scalars(self.ledger.env_steps, self.dream_phase(pass_before),
                           self.ledger.dream_updates)

    def _phase_end_due(self) -> bool:
        return bool(self.sequence) and self.loop.phase < len(self.sequence) and (
            self.ledger.env_steps >= (self.loop.phase + 1) * self.config.run.real_steps_each)

    def _end_phase(self, writer: MetricsWriter) -> None:
        """Ends the phase whose budget is spent: dreams (`run.dream_between`, not after the
        last), evaluates on every world (continual.csv), then starts the next world (the module
        docstring says how the replay carries over)."""
        c = self.config
        phase = self.loop.phase
        if c.run.dream_between and phase + 1 < len(self.sequence):
            self._dream_between(writer)
        if c.run.eval_episodes:
            rows = []
            key = evaluation_key(c.seed, self.ledger.env_steps)
            for index, programs in enumerate(self.sequence_programs):
                returns = evaluate_policy(c, programs, self.mesh, self.train_state.params, key,
                                          c.run.eval_episodes, c.run.eval_temperature)
                rows.append(f"{phase},{self.sequence[phase].spec.name},"
                            f"{self.sequence[index].spec.name},{self.ledger.env_steps},"
                            f"{self.ledger.updates},{float(returns.mean())},"
                            f"{float(returns.std())},{int(returns.size)}")
            if parallel.is_primary():
                _append_continual_rows(self.out_dir, rows)
        self.loop.phase = phase + 1
        if self.loop.phase < len(self.sequence):
            if c.run.rehearsal:
                self.replay = _cut_streams(self.replay)
            else:
                self.replay = parallel.committed(self.programs.new_replay(), self.mesh)
            self._use_world(self.loop.phase)

    def _collect_iteration(self, key) -> int:
        """One collection of `round_length()` steps a copy into the replay, counted in the
        ledger; returns its real steps (all copies)."""
        c = self.config
        if self.sequence:  # the schedule spans each world's phase
            temperature = actor.temperature_at(
                self.ledger.env_steps - self._phase_start(),
                dataclasses.replace(c, run=dataclasses.replace(
                    c.run, real_steps=c.run.real_steps_each)))
        else:
            temperature = actor.temperature_at(self.ledger.env_steps, c)
        length = self.round_length()
        real_steps = length * c.run.num_envs
        try:
            rows, returns, frames, episodes = self.collector.collect(
                self.train_state.params, key, temperature, length, self.ledger.env_steps)
        except collect_lib.StepFailed as failure:
            raise self._world_failed(failure) from failure.__cause__
        self.replay = self._add(self.replay, rows)
        self.ledger.env_steps += real_steps
        self.ledger.frames += frames
        self.ledger.episodes += episodes
        if self.sequence:
            self.ledger.count_world(self.world.spec.name, real_steps, frames, episodes)
        self.ledger.search += real_steps * c.search.simulations_per_root
        self.loop.recent_returns = (self.loop.recent_returns + [float(r) for r in returns])[-20:]
        return real_steps

    def _world_failed(self, failure: collect_lib.StepFailed) -> WorldFailed:
        """The error of a host world that raised during a step: the run is first checkpointed at
        the end of its last complete iteration (nothing of this one has reached the learner
        state, replay or ledger; the world is broken, so its episodes are not saved)."""
        error = failure.__cause__
        if self.checkpointer.latest_step() != checkpoint_step(self.ledger):
            self.save(host_world=False)
        saved = self.checkpointer.restore_record()["ledger"]["real"]["env_steps"]
        return WorldFailed(
            f"world {self.config.world} raised during step at real step {failure.step}: "
            f"{type(error).__name__}: {error}. The checkpoint at real step {saved} holds the run: "
            "continue it with --resume"
        )

    def _learn(self, key, real_steps: int) -> dict[str, float] | None:
        """The learner phases that the collection of `real_steps` real steps just done earns."""
        c = self.config
        # an emptied replay (a continual run without rehearsal) fills up again first
        stored_since = 0 if c.run.rehearsal else self._phase_start()
        if self.ledger.env_steps - stored_since < c.train.learning_starts:
            return None
        self.loop.update_credit += c.train.train_ratio * real_steps
        pass_key = jax.random.fold_in(key, 1_000_003)
        stale_key = jax.random.fold_in(key, 2_000_003)
        interval = c.train.reanalyse_pass_interval
        new_rows = bool(interval) and c.train.reanalyse_pass_new_rows
        updates_before = self.ledger.updates
        chunks, stale_chunks = [], 0
        while self.loop.update_credit >= self.chunk:
            if new_rows:  # the rows collected since the last pass, first (`reanalyse`)
                stale_chunks += self._reanalyse_stale(jax.random.fold_in(stale_key, len(chunks)))
            key, chunk_key = jax.random.split(key)
            chunks.append(self.train_phase(chunk_key))
            self.loop.update_credit -= self.chunk
        if not chunks:
            return None
        result = {k: float(np.mean(np.concatenate([np.ravel(m[k]) for m in chunks])))
                  for k in chunks[0] if k != "finite"}
        if new_rows:
            result["reanalyse_pass/stale_chunks"] = stale_chunks
        if interval and self.ledger.updates // interval > updates_before // interval:
            result["reanalyse_pass/chunks"] = self._reanalyse_pass(
                jax.random.fold_in(pass_key, self.ledger.updates // interval))
        return result

    def train_phase(self, key) -> dict[str, np.ndarray]:
        """One learner phase: `updates_per_phase` updates from the replay in one jitted call,
        counted in the ledger (updates, training unroll, per-update reanalysis).

        Returns:
          The phase's metrics, each [updates_per_phase] (numpy).

        Raises:
          TrainingDiverged: a non-finite loss or gradient with `train.nan_policy=stop` (the
            ledger and the checkpoint are left as they were before the phase).
        """
        c = self.config
        age = jnp.float32(c.train.off_policy_age_ratio * c.run.real_steps)
        if not self._learner_checked:  # once per process: does the program fit the device?
            self._learner_checked = True
            memory.check_fits("learner program", self._train_many,
                              (self.train_state, self.replay, key, age),
                              settings=_settings(c, memory.LEARNER_KNOBS))
        self.train_state, self.replay, metrics = self._train_many(
            self.train_state, self.replay, key, age)
        metrics = jax.device_get(metrics)
        if not np.all(metrics["finite"]):
            first_bad = int(np.argmin(metrics["finite"]))
            bad_update = self.ledger.updates + first_bad + 1
            terms = [k for k, v in metrics.items() if k.startswith("loss/") and k != "loss/total"
                     and not np.isfinite(v[first_bad])]
            if c.train.nan_policy == "stop":
                raise TrainingDiverged(
                    f"non-finite {', '.join(terms) or 'gradient'} at update {bad_update}; "
                    "the last good checkpoint is kept. Lower train.learning_rate or set "
                    "train.nan_policy=skip"
                )
        self.ledger.updates += self.chunk
        self.ledger.unroll += self.chunk * self.cost.unroll
        self.ledger.reanalyse += self.chunk * self.cost.reanalyse
        return metrics

    def stored_rows(self) -> int:
        """Rows the replay holds, all streams counted."""
        c = self.config
        stored_since = 0 if c.run.rehearsal else self._phase_start()
        return min((self.ledger.env_steps - stored_since) // c.run.num_envs,
                   c.replay.capacity) * c.run.num_envs

    def _reanalyse_pass(self, key) -> int:
        return self.reanalyse_pass(key, reanalyse.pass_chunks(self.config, self.stored_rows()))

    def _reanalyse_stale(self, key) -> int:
        """A pass over the stored rows whose targets the current target network did not make
        (`reanalyse.stale_rows`), if any; returns its search calls."""
        stale = int(self.programs.stale_rows(self.replay, self.train_state.updates))
        chunks = reanalyse.pass_chunks(self.config, stale)
        return self.reanalyse_pass(key, chunks) if chunks else 0

    def reanalyse_pass(self, key, chunks: int) -> int:
        """One buffer-wide reanalysis pass of `chunks` search calls (`reanalyse.pass_chunks`)
        with the current target network; returns `chunks` (the ledger's `dream` counts their
        model steps)."""
        c = self.config
        if not self._pass_checked:
            self._pass_checked = True
            knobs = ("train.reanalyse_pass_chunk", "search.num_simulations")
            memory.check_fits("buffer-wide reanalysis pass", self._reanalyse,
                              (self.train_state, self.replay, key, jnp.int32(chunks)),
                              knobs=knobs, settings=_settings(c, knobs))
        self.replay = self._reanalyse(self.train_state, self.replay, key, jnp.int32(chunks))
        self.ledger.dream += reanalyse.pass_cost(c, chunks)
        return chunks

    def evaluate(self, episodes: int | None = None, temperature: float | None = None) -> np.ndarray:
        """Returns of `episodes` episodes (run.eval_episodes by default) of search play without
        root noise at `temperature` (run.eval_temperature by default; 0 = greedy), on the
        world's held-out episodes where it has them (`worlds.eval_options`)."""
        c = self.config
        episodes = c.run.eval_episodes if episodes is None else episodes
        temperature = c.run.eval_temperature if temperature is None else temperature
        key = evaluation_key(c.seed, self.ledger.env_steps)
        return self.collector.evaluate(self.train_state.params, key, episodes, temperature)

    def record_eval(self, metrics_writer: MetricsWriter) -> None:
        """Evaluates (`evaluate`), sets the ledger's eval fields and writes the eval.csv row;
        nothing with run.eval_episodes=0."""
        if self.config.run.eval_episodes == 0:
            return
        returns = self.evaluate()
        self.loop.last_eval = self.ledger.env_steps
        self.loop.last_eval_dream_updates = self.ledger.dream_updates
        self.ledger.eval_episodes = int(returns.size)
        self.ledger.eval_mean_return = float(returns.mean())
        self.ledger.eval_std_return = float(returns.std())
        metrics_writer.evaluation(self.ledger)

    def run(self, progress: bool = True, stop_flag=None) -> SampleLedger:
        """Trains until `run.real_steps`; returns the final ledger.

        Args:
          progress: show a live progress bar.
          stop_flag: optional callable; when it returns True the run checkpoints and stops.
        """
        c = self.config
        self._start = time.perf_counter()
        writer = MetricsWriter(self.out_dir)
        show = progress and parallel.is_primary()
        bar = _ProgressBar(c.run.real_steps, self.ledger.env_steps) if show else None
        stopped = False
        try:
            if self.loop.next_eval <= self.ledger.env_steps < c.run.real_steps:
                self.record_eval(writer)  # the evaluation a stop put off (below)
                self.loop.next_eval += c.run.eval_interval
            if self.ledger.env_steps < c.run.real_steps and self._phase_end_due():
                self._end_phase(writer)  # the end of a phase a stop put off
            while self.ledger.env_steps < c.run.real_steps:
                key = jax.random.fold_in(self.loop_key, self.loop.iteration)
                collect_key, learn_key = jax.random.split(key)
                t0 = time.perf_counter()
                updates_before = self.ledger.updates
                collected = self._collect_iteration(collect_key)
                metrics = self._learn(learn_key, collected)
                self.loop.iteration += 1
                if metrics is not None:
                    metrics["dream_ratio"] = self.ledger.dream_ratio
                    writer.scalars(self.ledger.env_steps, metrics, self.ledger.dream_updates)
                if stop_flag is not None and stop_flag():
                    # before this step's evaluation, which can take minutes (Atari on a CPU):
                    # the checkpoint keeps it due, and the resumed run makes it first, at the
                    # same step with the same key
                    stopped = True
                    break
                if self.ledger.env_steps >= self.loop.next_eval:
                    self.record_eval(writer)
                    self.loop.next_eval += c.run.eval_interval
                if self._phase_end_due() and self.ledger.env_steps < c.run.real_steps:
                    self._end_phase(writer)  # after the evaluation above, of the world just trained
                if self.ledger.env_steps >= self.loop.next_checkpoint:
                    self.loop.next_checkpoint += c.run.checkpoint_interval
                    self.save()
                if bar is not None:
                    dt = time.perf_counter() - t0
                    bar.update(self.ledger, self.loop.recent_returns,
                               (self.ledger.updates - updates_before) / max(dt, 1e-9))
            if not stopped and self.loop.last_eval != self.ledger.env_steps:
                self.record_eval(writer)
            if not stopped and self._phase_end_due():
                self._end_phase(writer)  # the last phase: every world evaluated once more
            if self.checkpointer.latest_step() != checkpoint_step(self.ledger):
                self.save()
            elif parallel.is_primary():
                self.ledger.wall_seconds = self._wall()
                self.ledger.write(self.out_dir)
            if bar is not None:
                bar.finish("stopped: checkpoint written" if stopped else "done")
        finally:
            if bar is not None:
                bar.close()
            writer.close()
            self.close()
        return self.ledger

    def close(self) -> None:
        """Closes the checkpointer and a host world (after `run`, or a dream)."""
        self.checkpointer.close()
        self.collector.close()


class _ProgressBar:
    """A rich progress bar: real steps, recent return, dream ratio, updates/s, ETA."""

    def __init__(self, total: int, completed: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]real steps"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, info="")
        self.progress.start()

    def update(self, ledger: SampleLedger, recent: list, updates_per_second: float):
        recent_return = f"{np.mean(recent):.1f}" if recent else "-"
        eval_return = ("-" if ledger.eval_mean_return is None
                       else f"{ledger.eval_mean_return:.1f}")
        ratio = ledger.dream_ratio
        ratio_text = f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.2f}"  # 0.06 is not 0
        info = (f"return {recent_return} | eval {eval_return} | dream ratio {ratio_text} | "
                f"{updates_per_second:.1f} upd/s")
        self.progress.update(self.task, completed=min(ledger.env_steps, self.progress.tasks[0].total),
                             info=info)

    def finish(self, message: str):
        self.progress.update(self.task, info=message)

    def close(self):
        self.progress.stop()


def train(config: Config, out_dir: str, resume: bool = False, progress: bool = True,
          stop_flag=None) -> SampleLedger:
    """Builds a Trainer and runs it (see `Trainer.run`)."""
    return Trainer(config, out_dir, resume=resume).run(progress=progress, stop_flag=stop_flag)


# make_eval_world, compiled_programs and DeviceLayoutError: `dreamer.agent` imports them from here
__all__ = ["DeviceLayoutError", "Trainer", "TrainingDiverged", "WorldFailed", "compiled_programs",
           "config_mismatch", "make_eval_world", "train"]
