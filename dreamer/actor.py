"""Acting: search-driven collection and greedy evaluation.

JAX-native worlds get a fully jitted collector (world step + batched search inside one
`lax.scan`); host worlds get a Python loop around one jitted batched search per step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dreamer.config import Config
from dreamer.networks import WorldModel, agent_input, memory_size, next_memory
from dreamer.replay import Rows
from dreamer.search import make_search_for


@struct.dataclass
class CollectorState:
    """N world copies mid-episode.

    Attributes:
      world_state: the worlds' states, leading dim [N].
      timestep: the latest TimeStep, leading dim [N].
      episode_return: [N] float32 return so far in the current episodes.
      episode_length: [N] int32 steps so far in the current episodes.
      memory: [N, M] the agent's memory of the current episodes before their latest
        observation (`model.memory=recurrent`); None for a model without one.
    """

    world_state: Any
    timestep: Any
    episode_return: jax.Array
    episode_length: jax.Array
    memory: Any = None


class EpisodeStats(NamedTuple):
    """Episodes that ended during a collection, leading dims [L, N]."""

    finished: jax.Array  # bool
    episode_return: jax.Array  # float32, valid where finished
    episode_length: jax.Array  # int32, valid where finished


def temperature_at(real_steps: int, config: Config) -> float:
    """EfficientZero's visit-count temperature: T, T/2 after 50% and T/4 after 75% of the decay
    span (`search.temperature_decay_steps`, or the whole run when 0)."""
    span = config.search.temperature_decay_steps or config.run.real_steps
    fraction = real_steps / max(span, 1)
    scale = 1.0 if fraction < 0.5 else (0.5 if fraction < 0.75 else 0.25)
    return config.search.temperature * scale


def make_act(model: WorldModel, config: Config, explore: bool = True):
    """`act(params, key, observation [B,...], action_mask [B,A], temperature) -> SearchOutput`:
    the run's search (`search.make_search_for`), with root noise when `explore`. With a recurrent
    memory the observation is `networks.agent_input(observation, memory)` and the output's
    `memory` is the memory after it (else None)."""
    search = make_search_for(model, config)
    recurrent = memory_size(model.config) > 0

    def act(params, key, observation, action_mask, temperature):
        out = search(params, key, observation, action_mask, temperature, explore)
        if recurrent:
            out = out._replace(memory=model.apply(params, observation, method=WorldModel.remember))
        return out

    return act


def initial_memory(model: WorldModel, num_envs: int):
    """The memory `num_envs` copies start their episodes with: zeros [N, M], or None for a model
    without one (`networks.memory_size`)."""
    size = memory_size(model.config)
    return jnp.zeros((num_envs, size), jnp.float32) if size else None


def init_collector(world, key, num_envs: int, model: WorldModel | None = None) -> CollectorState:
    """Resets `num_envs` copies of a JAX world (with `model`'s initial memory)."""
    world_state, timestep = jax.vmap(world.reset)(jax.random.split(key, num_envs))
    return CollectorState(
        world_state=world_state,
        timestep=timestep,
        episode_return=jnp.zeros((num_envs,), jnp.float32),
        episode_length=jnp.zeros((num_envs,), jnp.int32),
        memory=None if model is None else initial_memory(model, num_envs),
    )


def make_collect(world, model: WorldModel, config: Config, num_steps: int):
    """`collect(params, state, key, temperature) -> (state, Rows [L,N], EpisodeStats [L,N])`.

    Pure; jit it. Each of the `num_steps` steps searches from all N observations at once
    (N x num_simulations model steps) and steps every world copy.
    """
    act = make_act(model, config, explore=True)

    def collect(params, state: CollectorState, key, temperature):
        def one_step(carry: CollectorState, inputs):
            key, temperature = inputs
            search_key, step_key = jax.random.split(key)
            ts = carry.timestep
            seen = agent_input(ts.observation, carry.memory)
            out = act(params, search_key, seen, ts.action_mask, temperature)
            num_envs = out.action.shape[0]
            world_state, next_ts = world.step_batch(
                carry.world_state, out.action, jax.random.split(step_key, num_envs)
            )
            episode_return = carry.episode_return + next_ts.reward
            episode_length = carry.episode_length + 1
            done = next_ts.terminated | next_ts.truncated
            rows = Rows(
                observation=ts.observation,
                action=out.action,
                reward=next_ts.reward,
                terminated=next_ts.terminated,
                truncated=next_ts.truncated,
                policy=out.policy,
                value=out.value,
                action_mask=ts.action_mask,
                memory=carry.memory,
            )
            stats = EpisodeStats(done, episode_return, episode_length)
            new_carry = CollectorState(
                world_state=world_state,
                timestep=next_ts,
                episode_return=jnp.where(done, 0.0, episode_return),
                episode_length=jnp.where(done, 0, episode_length),
                memory=next_memory(out.memory, done),
            )
            return new_carry, (rows, stats)

        keys = jax.random.split(key, num_steps)
        temps = jnp.full((num_steps,), temperature, jnp.float32)
        state, (rows, stats) = jax.lax.scan(one_step, state, (keys, temps))
        return state, rows, stats

    return collect


def make_evaluate(world, model: WorldModel, config: Config, num_episodes: int):
    """`evaluate(params, key, temperature) -> ([num_episodes] returns, steps)` of search play
    without root noise in a JAX world (greedy at temperature 0, see `run.eval_temperature`).

    Runs `num_episodes` copies until each has finished its first episode (or the time limit).
    """
    act = make_act(model, config, explore=False)
    limit = world.spec.max_episode_steps

    def evaluate(params, key, temperature):
        reset_key, loop_key = jax.random.split(key)
        world_state, ts = jax.vmap(world.reset)(jax.random.split(reset_key, num_episodes))

        def cond(carry):
            _, _, _, finished, _, t, _ = carry
            return (~finished.all()) & (t < limit)

        def body(carry):
            world_state, ts, returns, finished, key, t, memory = carry
            key, search_key, step_key = jax.random.split(key, 3)
            out = act(params, search_key, agent_input(ts.observation, memory), ts.action_mask,
                      temperature)
            world_state, ts = world.step_batch(
                world_state, out.action, jax.random.split(step_key, num_episodes)
            )
            returns = returns + jnp.where(finished, 0.0, ts.reward)
            finished = finished | ts.terminated | ts.truncated
            memory = next_memory(out.memory, ts.terminated | ts.truncated)
            return world_state, ts, returns, finished, key, t + 1, memory

        init = (world_state, ts, jnp.zeros((num_episodes,), jnp.float32),
                jnp.zeros((num_episodes,), bool), loop_key, jnp.zeros((), jnp.int32),
                initial_memory(model, num_episodes))
        _, _, returns, _, _, steps, _ = jax.lax.while_loop(cond, body, init)
        return returns, steps

    return evaluate


def host_evaluate(world, act_fn, params, key, num_episodes: int, seed: int,
                  temperature: float = 0.0, all_finished=np.all, memory=None) -> np.ndarray:
    """Evaluation in a host world with `num_episodes` copies (first episode of each), acting
    without root noise at `temperature` (0 = greedy); `memory`: the copies' initial memory
    (`initial_memory`, as numpy), None for a model without one.

    `all_finished(finished) -> bool` decides when to stop; a distributed run passes one that asks
    every process, so all of them leave the loop (and its collective search calls) together."""
    ts = world.reset(seed)
    returns = np.zeros((num_episodes,), np.float64)
    finished = np.zeros((num_episodes,), bool)
    for _ in range(world.spec.max_episode_steps):
        key, search_key = jax.random.split(key)
        out = act_fn(params, search_key, agent_input(ts.observation, memory), ts.action_mask,
                     temperature)
        ts = world.step(np.asarray(out.action))
        returns += np.where(finished, 0.0, ts.reward)
        finished |= ts.terminated | ts.truncated
        memory = host_next_memory(out.memory, ts.terminated | ts.truncated)
        if all_finished(finished):
            break
    return returns


def host_next_memory(memory, done):
    """`networks.next_memory` on the host: numpy in, numpy out (None passes through)."""
    if memory is None:
        return None
    return np.where(np.asarray(done)[:, None], 0.0, np.asarray(memory)).astype(np.float32)
