"""Collectors: how a run steps its world, one implementation for each kind of world.

A `JaxCollector` steps a JAX world's copies inside one jitted program a round (`Programs.collect`);
a `HostCollector` steps a host world's copies on the host, around one jitted batched search a
step. Both collect a round of experience, evaluate the agent, and hold the episodes in progress
that a checkpoint saves; the Trainer picks one for its world (`make_collector`) and from then on
never asks which kind of world it has.
"""

from __future__ import annotations

import base64
import collections
import pickle
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

import worlds
from dreamer import actor, parallel
from dreamer import replay as replay_lib
from dreamer.checkpoint import CheckpointError
from dreamer.config import Config
from dreamer.errors import DeviceLayoutError, TrainingDiverged
from dreamer.networks import agent_input


class Round(NamedTuple):
    """One collection: the rows for the replay ([steps, copies] each), the returns of the
    episodes it finished, and the frames and episodes it counts (of every process)."""

    rows: replay_lib.Rows
    returns: np.ndarray
    frames: int
    episodes: int


class StepFailed(Exception):
    """A host world raised during `step` (the world's error is the cause) at real step `step`;
    nothing of the round has reached the replay, and the world is left broken."""

    def __init__(self, step: int):
        super().__init__(f"the world raised at real step {step}")
        self.step = step


class Collector(Protocol):
    """What the Trainer asks of its world's collector."""

    world: Any
    state: Any
    """The episodes in progress as arrays, saved in the checkpoint's array state (None where
    they are not arrays: a host world's go in the record, `saved_episodes`)."""

    @staticmethod
    def check_layout(config: Config) -> None:
        """Refuses a config whose copies this kind of world cannot split over the processes
        (`DeviceLayoutError`); called on the type, before the run is built."""

    def collect(self, params, key, temperature, length: int, env_steps: int) -> Round:
        """Steps every copy `length` times with the acting search at `temperature`, from real
        step `env_steps` (for messages)."""

    def evaluate(self, params, key, episodes: int, temperature: float) -> np.ndarray:
        """Returns of `episodes` first episodes of search play without root noise at
        `temperature` (0 = greedy), on the world's held-out episodes where it has them."""

    def saved_episodes(self) -> str | None:
        """The episodes in progress for the checkpoint's record; None where there are none to
        save there."""

    def restore(self, state, record: dict, source: str) -> bool:
        """Puts back the episodes of a checkpoint (its array `state` and `record`, of the run in
        `source`); False where they restart instead (the replay's streams must then be cut)."""

    def close(self) -> None:
        """Releases the world."""


def make_collector(config: Config, world, programs, mesh, key) -> Collector:
    """The collector of `world` with the run's `programs`: a JAX world's copies start from
    `key`; a host world's from the run's seed."""
    return collector_type(world)(config, world, programs, mesh, key)


def collector_type(world) -> type:
    """`JaxCollector` or `HostCollector`, for the kind of `world`."""
    return JaxCollector if world.is_jax else HostCollector


def host_act(act_fn, mesh, params, key, observation, action_mask, temperature):
    """One batched search over this process's observations of a host world (all processes
    search together in a distributed run); returns this process's share of the SearchOutput
    as numpy."""
    spec = parallel.P(parallel.AXIS)
    observation, mask = parallel.to_global((observation, action_mask), mesh, spec)
    out = act_fn(params, key, observation, mask, temperature)
    return parallel.to_local(out, mesh, spec)


def make_eval_world(config: Config, episodes: int):
    """A host world of this process's share of `episodes` copies, built with the run's options
    and the world's evaluation options (its held-out episodes: `worlds.eval_options`)."""
    share = episodes // jax.process_count()
    return worlds.make(config.world, num_envs=share, evaluation=True, **config.world_kwargs())


def host_memory(model, copies: int):
    """The memory `copies` copies of a host world start with (numpy zeros), or None for a model
    without one."""
    memory = actor.initial_memory(model, copies)
    return None if memory is None else np.asarray(memory)


def evaluate_policy(config: Config, programs, mesh, params, key, episodes: int,
                    temperature: float, host_world=None) -> np.ndarray:
    """Returns of `episodes` first episodes of search play without root noise at `temperature`
    (0 = greedy): in the JAX world of `programs`, or in `host_world` (built by
    `make_eval_world`, this process's share of the copies)."""
    if host_world is None:
        returns, _ = programs.evaluate(episodes)(params, key, np.float32(temperature))
        return np.asarray(returns)
    share = episodes // jax.process_count()
    returns = actor.host_evaluate(
        host_world,
        lambda params, k, obs, mask, temp: host_act(programs.act_eval, mesh, params, k, obs,
                                                    mask, temp),
        params, key, share,
        seed=config.seed + 1_000_003 + jax.process_index() * share, temperature=temperature,
        all_finished=lambda finished: bool(parallel.gather(finished.all()).all()),
        memory=host_memory(programs.model, share),
    )
    return parallel.gather(returns).reshape(-1)


class JaxCollector:
    """A JAX world's copies, stepped a round at a time by one jitted program; their state (the
    episodes in progress) is arrays, saved with the run's array state."""

    def __init__(self, config: Config, world, programs, mesh, key):
        self.config, self.world, self.programs, self.mesh = config, world, programs, mesh
        self.state = parallel.committed(programs.new_collector(key), mesh)

    @staticmethod
    def check_layout(config: Config) -> None:
        """Nothing to check: the evaluation's copies live on the mesh."""
        del config

    def collect(self, params, key, temperature, length: int, env_steps: int) -> Round:
        del env_steps  # a JAX world does not fail mid-round
        program = self.programs.collect_of_length(length)
        self.state, rows, stats = program(params, self.state, key, temperature)
        returns = np.asarray(stats.episode_return)[np.asarray(stats.finished)]
        frames = length * self.config.run.num_envs * self.world.spec.frames_per_step
        return Round(rows, returns, frames, len(returns))

    def evaluate(self, params, key, episodes: int, temperature: float) -> np.ndarray:
        return evaluate_policy(self.config, self.programs, self.mesh, params, key, episodes,
                               temperature)

    def saved_episodes(self) -> None:
        """None: the episodes are in the array state."""
        return None

    def restore(self, state, record: dict, source: str) -> bool:
        del record, source
        self.state = state
        return True

    def close(self) -> None:
        self.world.close()


class HostCollector:
    """A host world's copies (this process's share), stepped on the host around one jitted
    batched search a step; the episodes in progress (the timestep to act on, the running returns
    and lengths, the world's own state) go into the checkpoint's record."""

    state = None

    def __init__(self, config: Config, world, programs, mesh, key):
        del key  # the copies are seeded from the run's seed (`_seed`)
        self.config, self.world, self.programs, self.mesh = config, world, programs, mesh
        self.copies = config.run.num_envs // jax.process_count()
        self.timestep = world.reset(self._seed(config.seed))
        self.returns = np.zeros(self.copies, np.float64)
        self.lengths = np.zeros(self.copies, np.int64)
        self.memory = host_memory(programs.model, self.copies)

    @staticmethod
    def check_layout(config: Config) -> None:
        """Refuses evaluation episodes that do not split over the processes (each plays its
        share of the copies)."""
        processes = jax.process_count()
        if config.run.eval_episodes % processes:
            raise DeviceLayoutError(
                f"run.eval_episodes={config.run.eval_episodes} does not split over "
                f"{processes} processes; make it a multiple of {processes}"
            )

    def _seed(self, seed: int) -> int:
        """Copy i of process p is seeded with seed + p * local copies + i (distinct everywhere)."""
        return seed + jax.process_index() * self.copies

    def collect(self, params, key, temperature, length: int, env_steps: int) -> Round:
        """Raises:
          StepFailed: the world raised during `step`.
          TrainingDiverged: the world returned a non-finite reward or observation."""
        c = self.config
        frames_before = self.world.frames
        columns: dict[str, list] = collections.defaultdict(list)
        finished_returns = []
        for t in range(length):
            ts = self.timestep
            out = host_act(self.programs.act, self.mesh, params, jax.random.fold_in(key, t),
                           agent_input(ts.observation, self.memory), ts.action_mask, temperature)
            action = out.action
            step = env_steps + t * c.run.num_envs
            try:
                nxt = self.world.step(action)
            except Exception as e:
                raise StepFailed(step) from e
            if not (np.all(np.isfinite(nxt.reward)) and np.all(np.isfinite(nxt.observation))):
                raise TrainingDiverged(
                    f"world {c.world} returned a non-finite reward or observation at real "
                    f"step {step}"
                )
            for name, value in (("observation", ts.observation), ("action", action),
                                ("reward", nxt.reward), ("terminated", nxt.terminated),
                                ("truncated", nxt.truncated), ("policy", np.asarray(out.policy)),
                                ("value", np.asarray(out.value)), ("action_mask", ts.action_mask),
                                ("memory", self.memory)):
                if value is not None:
                    columns[name].append(value)
            self.returns += nxt.reward
            self.lengths += 1
            done = nxt.terminated | nxt.truncated
            finished_returns += list(self.returns[done])
            self.returns[done] = 0.0
            self.lengths[done] = 0
            self.memory = actor.host_next_memory(out.memory, done)
            self.timestep = nxt
        rows = replay_lib.Rows(**{k: np.stack(v) for k, v in columns.items()})
        rows = parallel.to_global(rows, self.mesh, parallel.P(None, parallel.AXIS))
        # the ledger counts every process's frames and episodes
        frames = int(parallel.gather(self.world.frames - frames_before).sum())
        episodes = int(parallel.gather(len(finished_returns)).sum())
        return Round(rows, np.asarray(finished_returns), frames, episodes)

    def evaluate(self, params, key, episodes: int, temperature: float) -> np.ndarray:
        world = make_eval_world(self.config, episodes)
        try:
            return evaluate_policy(self.config, self.programs, self.mesh, params, key, episodes,
                                   temperature, world)
        finally:
            world.close()

    def saved_episodes(self) -> str | None:
        """The episodes in progress (the world's own state, the timestep to act on and the
        running returns) as base64 text; None for a world that cannot be saved, or in a
        distributed run (each process steps its own copies)."""
        if jax.process_count() > 1:
            return None
        world = self.world.get_state()
        if world is None:
            return None
        blob = pickle.dumps({"world": world, "timestep": self.timestep,
                             "return": self.returns, "length": self.lengths,
                             "memory": self.memory})
        return base64.b64encode(blob).decode("ascii")

    def restore(self, state, record: dict, source: str) -> bool:
        """Continues the saved episodes where the record holds them; otherwise the world
        restarts, its new episodes with fresh seeds, and returns False.

        Raises:
          CheckpointError: the saved episodes cannot be put back.
        """
        del state
        saved = record.get("host_world")
        if saved is not None and jax.process_count() == 1:
            try:
                host = pickle.loads(base64.b64decode(saved))
                self.world.set_state(host["world"])
            except Exception as e:  # a damaged record, or a world changed since the save
                raise CheckpointError(
                    f"--resume: the {self.config.world} episodes saved in the newest checkpoint "
                    f"of {source} cannot be restored ({type(e).__name__}: {e}); delete that "
                    "checkpoint's step folder to fall back to an older one"
                ) from None
            self.timestep = host["timestep"]
            self.returns, self.lengths = host["return"], host["length"]
            self.memory = host.get("memory")
            return True
        self.memory = host_memory(self.programs.model, self.copies)
        self.timestep = self.world.reset(
            self._seed(self.config.seed + int(record["ledger"]["real"]["env_steps"])))
        return False

    def close(self) -> None:
        self.world.close()
