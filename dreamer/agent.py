"""A trained agent read from a run folder, read-only: what `dreamer eval` and `dreamer play
--agent` use, and the Python API's `dreamer.load(run_dir)`.

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
from dreamer.actor import initial_memory
from dreamer.checkpoint import Checkpointer, CheckpointError
from dreamer.config import Config, config_from_dict
from dreamer.errors import UserError
from dreamer.ledger import SampleLedger
from dreamer.networks import agent_input


class NotARunError(UserError, ValueError):
    """The folder is not a dreamer run folder."""


@dataclasses.dataclass(frozen=True)
class Agent:
    """A run's agent at its newest checkpoint (`load`), read-only.

    Example::

        import jax

        import dreamer
        import worlds

        agent = dreamer.load("runs/catch-s0")
        world = worlds.make("catch")
        state, timestep = world.reset(jax.random.key(0))
        action = agent.act(timestep.observation, action_mask=timestep.action_mask)
        returns = agent.evaluate(episodes=10)  # what `dreamer eval --episodes 10` prints

    Attributes:
      config: the config the run was trained with.
      ledger: the newest checkpoint's sample ledger (real and dreamed steps, updates).
      model, params: the world model and its learned parameters.
      programs, mesh: the run's compiled programs and its device mesh.
      spec: the `WorldSpec` the agent acts in (observation shape, actions, action mask).
      world: the JAX world evaluation plays in; None for a host world (Atari, gymnasium, text
        simulators), for which each `evaluate` builds the world's evaluation copies (its held-out
        episodes: `worlds.eval_options`) and closes them.
    """

    config: Config
    ledger: SampleLedger
    model: Any
    params: Any
    programs: Any
    mesh: Any
    spec: Any = None
    world: Any = None
    _memory: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def reset(self) -> None:
        """Forgets the episode: an agent with a recurrent memory (`model.memory=recurrent`)
        remembers every observation `act` has seen since its last reset, so call it at each
        episode's start. Nothing to forget for an agent without one."""
        self._memory.clear()

    def act(self, observation, key=None, temperature: float = 0.0, action_mask=None) -> int:
        """The action the agent's search picks for one observation (no batch axis).

        Args:
          observation: one observation of the world, shaped `spec.observation_shape`.
          key: a `jax.random.key` for the search (default `jax.random.key(0)`).
          temperature: 0 plays the search's most visited action (as evaluation does by
            default); T > 0 samples the search policy at T.
          action_mask: [num_actions] bool, the legal actions (`timestep.action_mask`); all legal
            when None. The action returned is always a legal one.

        An agent with a recurrent memory also reads what it remembers of the episode and adds
        this observation to it (`reset` forgets it).

        Returns:
          The action, an int in `[0, spec.num_actions)`.
        """
        observation = np.asarray(observation, self.spec.observation_dtype)
        if observation.shape != tuple(self.spec.observation_shape):
            raise UserError(f"act: observation of shape {observation.shape}, the agent of "
                            f"{self.spec.name} takes one of shape "
                            f"{tuple(self.spec.observation_shape)} (one observation, no batch "
                            "axis)")
        num_actions = self.spec.num_actions
        mask = (np.ones((num_actions,), bool) if action_mask is None
                else np.asarray(action_mask, bool))
        if mask.shape != (num_actions,) or not mask.any():
            raise UserError(f"act: action_mask must be {num_actions} booleans with one True at "
                            f"least, got shape {mask.shape}")
        if not temperature >= 0:
            raise UserError(f"act: temperature {temperature}: must be >= 0 (0 = greedy)")
        key = jax.random.key(0) if key is None else key
        memory = self._memory.get("memory", initial_memory(self.model, 1))
        out = self.programs.act_eval(self.params, key, agent_input(observation[None], memory),
                                     mask[None], np.float32(temperature))
        if out.memory is not None:
            self._memory["memory"] = out.memory
        return int(np.asarray(out.action)[0])

    def evaluate(self, episodes: int | None = None, temperature: float | None = None):
        """Returns [episodes] of `episodes` first episodes (run.eval_episodes by default) played
        without root noise at `temperature` (run.eval_temperature by default; 0 = greedy), on the
        world's held-out episodes where it has them, with the key the run's own evaluation at
        this checkpoint uses: the returns `dreamer eval --run RUN --episodes N` reports.

        Example: `dreamer.load("runs/catch-s0").evaluate(10).mean()`."""
        from dreamer.train import evaluate_policy, evaluation_key, make_eval_world

        config = self.config
        episodes = config.run.eval_episodes if episodes is None else episodes
        temperature = config.run.eval_temperature if temperature is None else temperature
        if episodes < 1:
            raise UserError(f"evaluate: episodes {episodes}: must be > 0")
        key = evaluation_key(config.seed, self.ledger.env_steps)
        if self.programs.evaluate is not None:  # a JAX world: evaluation is one program
            return evaluate_policy(config, self.programs, self.mesh, self.params, key, episodes,
                                   temperature)
        world = make_eval_world(config, episodes)  # a copy an episode
        try:
            return evaluate_policy(config, self.programs, self.mesh, self.params, key, episodes,
                                   temperature, world)
        finally:
            world.close()



def make_world(config: Config):
    """The world a run's agent plays for evaluation, built with the run's options (a continual
    run: the first of its worlds, seen through the sequence's common interface)."""
    import worlds

    if config.run.worlds:
        from dreamer.train import make_continual_worlds

        return make_continual_worlds(config)[0]
    return worlds.make(config.world, **config.world_kwargs())


def read_config(run_dir: str) -> Config:
    """The config a run was trained with, or NotARunError."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path) or not os.path.isdir(os.path.join(run_dir, "checkpoints")):
        raise NotARunError(f"{run_dir}: not a dreamer run folder (no config.json / checkpoints)")
    with open(path) as f:
        return config_from_dict(json.load(f))


def load(run_dir: str, world=None, config: Config | None = None) -> Agent:
    """The agent of `run_dir` at its newest checkpoint, read-only: nothing in the folder is
    created, changed or removed.

    `world`: the world to play, built with the run's options (the model's shapes come from its
    spec; a JAX world is also the one `Agent.evaluate` runs in). By default the run's own world
    is built from its config (a continual run: the first world of its sequence).
    `config`: the run's config, if the caller has read it already.

    Example::

        import dreamer

        agent = dreamer.load("runs/catch-s0")
        print(agent.ledger.env_steps, agent.evaluate(10).mean())
    """
    config = read_config(run_dir) if config is None else config
    built = world is None
    if built:
        world = make_world(config)
    try:
        return _load(run_dir, world, config)
    finally:
        if built:
            world.close()  # `Agent.evaluate` builds a host world's evaluation copies itself


def _load(run_dir: str, world, config: Config) -> Agent:
    from dreamer.train import DeviceLayoutError, compiled_programs

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
                 model=programs.model, params=train_state.params, programs=programs, mesh=mesh,
                 spec=world.spec, world=world if programs.evaluate is not None else None)


def evaluate(run_dir: str, episodes: int | None = None, temperature: float | None = None):
    """(agent, returns) of `episodes` first episodes (run.eval_episodes by default) played by
    the run's newest checkpoint without root noise at `temperature` (run.eval_temperature by
    default), on the world's held-out episodes where it has them, with the key the run's own
    evaluation at that step uses (`Agent.evaluate`)."""
    agent = load(run_dir)
    return agent, agent.evaluate(episodes, temperature)
