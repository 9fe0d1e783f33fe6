"""One smoke check of the world contract, for every world (like gymnax's and jumanji's
`check_env_does_not_smoke`): `check_world(world)` resets copies, steps them with random legal
actions, and checks every TimeStep against the world's spec.

What it checks, of a JAX world (`num_envs` copies vmapped over keys, as the collector runs them)
and of a host world (its own `num_envs` copies) alike:

* observation shape `[copies, *observation_shape]` and dtype `observation_dtype`;
* reward `[copies]` float32, finite, within `reward_range`;
* terminated and truncated `[copies]` bools, never both;
* action mask `[copies, num_actions]` bool with a legal action in every copy (all legal where the
  spec says the world does not mask);
* auto-reset: stepping goes on past episode ends; a JAX world's step count restarts at every
  end, and truncation fires exactly at the time limit; a JAX world's reset is a function of its
  key; a host world counts `frames_per_step` frames a step of each copy;
* a world built with `history=k` (`worlds.history`): a reset's stack is its first observation k
  times, a step's drops the oldest and appends one, and an episode end's is the next episode's
  first observation k times.
"""

from __future__ import annotations

import numpy as np


def check_timestep(ts, spec, copies: int) -> None:
    """Asserts that the batched TimeStep `ts` (numpy) of `copies` copies matches `spec`."""
    assert ts.observation.shape == (copies, *spec.observation_shape), (
        ts.observation.shape, spec.observation_shape)
    assert ts.observation.dtype == np.dtype(spec.observation_dtype), ts.observation.dtype
    assert ts.reward.shape == (copies,) and ts.reward.dtype == np.float32, ts.reward.dtype
    assert np.isfinite(ts.reward).all()
    low, high = spec.reward_range
    assert ((ts.reward >= low) & (ts.reward <= high)).all(), (ts.reward, spec.reward_range)
    for flag in (ts.terminated, ts.truncated):
        assert flag.shape == (copies,) and flag.dtype == np.bool_, (flag.shape, flag.dtype)
    assert not (ts.terminated & ts.truncated).any()
    assert ts.action_mask.shape == (copies, spec.num_actions)
    assert ts.action_mask.dtype == np.bool_
    assert ts.action_mask.any(axis=1).all(), "a copy has no legal action"
    if not spec.has_action_mask:
        assert ts.action_mask.all()


def check_stack(world, before, ts) -> None:
    """Asserts the stack rule of a `history=k` world (a no-op for other worlds): `ts` [copies]
    follows the observations `before` (None after a reset)."""
    from worlds.history import HistoryWorld, HostHistoryWorld

    if not isinstance(world, HistoryWorld | HostHistoryWorld):
        return
    k, width = world.history, world.world.spec.observation_shape[-1]
    obs = np.asarray(ts.observation)
    slots = np.split(obs, k, axis=-1)
    new = slots[-1]
    assert new.shape[-1] == width
    done = np.zeros(obs.shape[:1], bool) if before is None else np.asarray(ts.done)
    for i in range(obs.shape[0]):
        if before is None or done[i]:  # a new episode: its first observation k times
            for slot in slots:
                np.testing.assert_array_equal(slot[i], new[i])
        else:  # the oldest dropped, the rest shifted
            np.testing.assert_array_equal(obs[i, ..., :-width], np.asarray(before)[i, ..., width:])


def random_legal_actions(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """One uniformly drawn legal action of each row of `mask` [copies, num_actions]."""
    return np.array([rng.choice(np.flatnonzero(row)) for row in mask], np.int32)


def check_world(world, steps: int = 20, copies: int = 3, seed: int = 0,
                expect_episode_end: bool = False) -> int:
    """Runs the smoke check of the module docstring; returns the number of episode ends seen
    (`expect_episode_end` asserts there was one, so auto-reset was exercised)."""
    spec = world.spec
    assert spec.num_actions == len(spec.action_names) >= 1
    assert spec.max_episode_steps >= 1 and spec.frames_per_step >= 1
    rng = np.random.default_rng(seed)
    ends = _check_jax(world, steps, copies, seed, rng) if world.is_jax else _check_host(
        world, steps, seed, rng)
    if expect_episode_end:
        assert ends > 0, "no episode ended: auto-reset untested"
    return ends


def _check_jax(world, steps, copies, seed, rng) -> int:
    import jax

    spec = world.spec
    reset = jax.jit(jax.vmap(world.reset))
    step = jax.jit(jax.vmap(world.step))
    keys = jax.random.split(jax.random.key(seed), copies)
    state, ts = jax.device_get(reset(keys))
    check_timestep(ts, spec, copies)
    check_stack(world, None, ts)
    assert not ts.done.any() and (ts.reward == 0).all()
    np.testing.assert_array_equal(np.asarray(state.step_count), 0)
    again = jax.device_get(reset(keys)[1])
    np.testing.assert_array_equal(again.observation, ts.observation)  # a function of the key
    ends = 0
    for t in range(steps):
        previous = np.asarray(state.step_count)
        actions = random_legal_actions(rng, ts.action_mask)
        before = ts.observation
        state, ts = jax.device_get(step(state, actions, jax.random.split(jax.random.key(t), copies)))
        check_timestep(ts, spec, copies)
        check_stack(world, before, ts)
        counts = np.asarray(state.step_count)
        done = ts.terminated | ts.truncated
        np.testing.assert_array_equal(counts, np.where(done, 0, previous + 1))  # auto-reset
        np.testing.assert_array_equal(
            ts.truncated, ~ts.terminated & (previous + 1 >= spec.max_episode_steps))
        ends += int(done.sum())
    return ends


def _check_host(world, steps, seed, rng) -> int:
    spec, copies = world.spec, world.num_envs
    frames = world.frames
    ts = world.reset(seed=seed)
    check_timestep(ts, spec, copies)
    check_stack(world, None, ts)
    assert not (ts.terminated | ts.truncated).any()
    ends = 0
    for _ in range(steps):
        before, observation = world.frames, ts.observation
        ts = world.step(random_legal_actions(rng, ts.action_mask))
        check_timestep(ts, spec, copies)
        check_stack(world, observation, ts)
        assert world.frames >= before + copies * spec.frames_per_step, (before, world.frames)
        ends += int((ts.terminated | ts.truncated).sum())
    assert world.frames > frames
    return ends
