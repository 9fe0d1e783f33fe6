"""A trained agent read from a run folder, read-only: what `dreamer eval` and `dreamer play
--agent` use.

It reads the run's config, the newest checkpoint's record (the ledger) and the learner's
parameters from that checkpoint, and nothing else: not the replay, not the world states, and it
builds no training world. Nothing in the run folder is created, changed or removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import numpy as np

from dreamer import parallel
from dreamer.checkpoint import Checkpointer, CheckpointError
from dreamer.config import Config, config_from_dict
from dreamer.errors import UserError
from dreamer.ledger import SampleLedger


class NotARunError(UserError, ValueError):
    """The folder is not a dreamer run folder."""


@dataclasses.dataclass(frozen=True)
class Agent:
    """A run's agent at its newest checkpoint."""

    config: Config
    ledger: SampleLedger
    model: Any
    params: Any
    programs: Any
    mesh: Any


def read_config(run_dir: str) -> Config:
    """The config a run was trained with, or NotARunError."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path) or not os.path.isdir(os.path.join(run_dir, "checkpoints")):
        raise NotARunError(f"{run_dir}: not a dreamer run folder (no config.json / checkpoints)")
    with open(path) as f:
        return config_from_dict(json.load(f))


def load(run_dir: str, world, config: Config | None = None) -> Agent:
    """The agent of `run_dir` for `world` (built by the caller with the run's options: the
    model's shapes come from its spec; a JAX world is also the one evaluation runs in)."""
    from dreamer.train import DeviceLayoutError, compiled_programs

    config = read_config(run_dir) if config is None else config
    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"), 1, read_only=True)
    try:
        step = checkpointer.latest_step()
        if step is None:
            raise CheckpointError(
                f"{run_dir}/checkpoints holds no finished checkpoint (the run was killed before "
                "its first one)")
        record = checkpointer.restore_record(step)
        try:
            mesh = parallel.make_mesh(config.run.devices)
        except ValueError as e:
            raise DeviceLayoutError(str(e)) from None
        programs = compiled_programs(config, world, mesh)
        example = np.zeros((1, *world.spec.observation_shape), world.spec.observation_dtype)
        fresh = programs.new_train_state(jax.random.key(0), example)
        train_state = checkpointer.restore_part({"train": fresh}, step)["train"]
    finally:
        checkpointer.close()
    return Agent(config=config, ledger=SampleLedger.from_json(record["ledger"]),
                 model=programs.model, params=train_state.params, programs=programs, mesh=mesh)


def evaluate(run_dir: str, episodes: int | None = None, temperature: float | None = None):
    """(agent, returns) of `episodes` first episodes (run.eval_episodes by default) played by
    the run's newest checkpoint without root noise at `temperature` (run.eval_temperature by
    default), on the world's held-out episodes where it has them, with the key the run's own
    evaluation at that step uses."""
    import worlds
    from dreamer.train import evaluate_policy, evaluation_key, make_eval_world

    config = read_config(run_dir)
    episodes = config.run.eval_episodes if episodes is None else episodes
    temperature = config.run.eval_temperature if temperature is None else temperature
    world = worlds.make(config.world, **config.world_kwargs())
    host = not world.is_jax
    if host:  # one copy per evaluation episode, with the world's held-out options
        world.close()
        world = make_eval_world(config, episodes, world.eval_options)
    try:
        agent = load(run_dir, world, config)
        key = evaluation_key(config.seed, agent.ledger.env_steps)
        returns = evaluate_policy(config, agent.programs, agent.mesh, agent.params, key, episodes,
                                  temperature, world if host else None)
    finally:
        if host:
            world.close()
    return agent, returns
