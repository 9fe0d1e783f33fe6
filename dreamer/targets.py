"""Training targets from a replay window: episode masks, n-step values, value prefixes.

Conventions for a window of W rows (row j: observation o_j, action a_j, reward r_j of that action,
end flags of that transition), unrolled K steps from row 0:

* alive[k]: row k exists and belongs to row 0's episode (no episode end in rows 0..k-1).
* absorbing[k]: row k lies past a *terminal* end in rows 0..k-1 (value 0, reward 0 there).
* The n-step value target at row k (EfficientZero / MuZero):
      z_k = sum_{j<m} gamma^j r_{k+j} + gamma^m v(o_{k+m}),
  with m <= horizon stopping early at an episode end (no bootstrap after a terminal; after a
  time-limit truncation at row k+m-1, v(o_{k+m-1}) stands in for the unobserved final state) or at
  the newest row of the stream (a shorter but still unbiased-in-form n-step return).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class EpisodeMasks(NamedTuple):
    alive: jax.Array  # [B, K+1] bool
    absorbing: jax.Array  # [B, K+1] bool


class NStepPlan(NamedTuple):
    """The parts of n-step value targets that do not need a network.

    Attributes:
      discounted_rewards: [B, K+1] sum_{j<m} gamma^j r_{k+j}.
      bootstrap_index: [B, K+1] int32 window row whose value is bootstrapped.
      bootstrap_discount: [B, K+1] gamma^m, or 0 where there is no bootstrap (terminal).
      valid: [B, K+1] bool, a target exists (row k alive and at least one step counted).
    """

    discounted_rewards: jax.Array
    bootstrap_index: jax.Array
    bootstrap_discount: jax.Array
    valid: jax.Array


class Targets(NamedTuple):
    """What one update's loss trains toward, for B windows unrolled K steps (the learner's
    `prepare` returns them with a leading [G] axis, one per batch of its group).

    Attributes:
      value: [B, K+1] float32 value targets (n-step, or the search value on stale rows with
        `train.value_target=mixed`); 0 where none exists.
      value_valid: [B, K+1] bool, a value target exists (`NStepPlan.valid`).
      value_prefix: [B, K] float32 value-prefix targets of unrolled steps 1..K.
      policy: [B, K+1, A] float32 policy targets: search policies, stored or fresh (without
        planning, advantage-weighted one-hots).
      masks: EpisodeMasks, each [B, K+1].
      fresh: [B, K+1] bool, the policy target was made by the current target network.
    """

    value: jax.Array
    value_valid: jax.Array
    value_prefix: jax.Array
    policy: jax.Array
    masks: EpisodeMasks
    fresh: jax.Array


def episode_ends(terminated, truncated, time_limit: str) -> tuple[jax.Array, jax.Array]:
    """The (terminated, truncated) flags the targets use, given what a time-limit cut means.

    "bootstrap" keeps them (a cut episode's return goes on past the cut, valued by the last state
    seen); "terminal" counts a cut as a terminal (its return ends there, and the rows after it
    are absorbing), for tasks where running out of steps is failure.
    """
    if time_limit == "terminal":
        return terminated | truncated, jnp.zeros_like(truncated)
    if time_limit != "bootstrap":
        raise ValueError(f"time_limit must be 'bootstrap' or 'terminal', got {time_limit!r}")
    return terminated, truncated


def episode_masks(terminated, truncated, present, unroll_steps: int) -> EpisodeMasks:
    """Masks for rows 0..K of windows ([B, W] flags, W >= K+1)."""
    done = (terminated | truncated)[:, :unroll_steps]
    first_end = done & (jnp.cumsum(done, axis=1) == 1)
    zeros = jnp.zeros_like(done[:, :1])
    ended_before = jnp.concatenate([zeros, jnp.cumsum(done, axis=1) > 0], axis=1)  # [B, K+1]
    terminal_first = first_end & terminated[:, :unroll_steps]
    terminal_before = jnp.concatenate([zeros, jnp.cumsum(terminal_first, axis=1) > 0], axis=1)
    alive = present[:, : unroll_steps + 1] & ~ended_before
    # Past a terminal the episode is over for good, so targets there are known (zero); past a
    # truncation or the newest row they are unknown and masked.
    return EpisodeMasks(alive=alive, absorbing=terminal_before)


def nstep_plan(
    reward, terminated, truncated, present, horizon, unroll_steps: int, td_steps: int, discount
) -> NStepPlan:
    """Plans n-step value targets for rows 0..K of windows of W >= K + td_steps + 1 rows.

    Args:
      reward, terminated, truncated, present: [B, W] window rows.
      horizon: [B] int32 TD horizon per window (<= td_steps; off-policy correction shrinks it).
      unroll_steps: K.
      td_steps: n, the largest horizon.
      discount: gamma.
    """
    k = jnp.arange(unroll_steps + 1)[:, None]  # [K+1, 1]
    j = jnp.arange(td_steps)[None, :]  # [1, n]
    rows = k + j  # [K+1, n]
    done = terminated | truncated

    def at(x, offset=0):
        return x[:, rows + offset]  # [B, K+1, n]

    previous_done = jnp.where(j > 0, at(done, -1), False)
    step_ok = (
        (j[None] < horizon[:, None, None])
        & at(present)
        & (at(present, 1) | at(done))
        & ~previous_done
    )
    counted = jnp.cumprod(step_ok, axis=2).astype(bool)  # [B, K+1, n]
    steps = counted.sum(axis=2)  # m
    gammas = discount ** j.astype(jnp.float32)
    discounted_rewards = jnp.sum(jnp.where(counted, at(reward) * gammas, 0.0), axis=2)
    ended_terminal = jnp.any(counted & at(terminated), axis=2)
    ended_truncated = jnp.any(counted & at(truncated), axis=2)
    bootstrap_index = jnp.where(ended_truncated, k[:, 0] + steps - 1, k[:, 0] + steps)
    bootstrap_discount = jnp.where(ended_terminal, 0.0, discount ** steps.astype(jnp.float32))
    masks = episode_masks(terminated, truncated, present, unroll_steps)
    valid = masks.alive & (steps > 0)
    return NStepPlan(
        discounted_rewards=discounted_rewards,
        bootstrap_index=jnp.maximum(bootstrap_index, 0).astype(jnp.int32),
        bootstrap_discount=bootstrap_discount,
        valid=valid,
    )


def value_targets(plan: NStepPlan, bootstrap_value) -> jax.Array:
    """[B, K+1] n-step value targets; 0 where no target exists (absorbing or missing)."""
    target = plan.discounted_rewards + plan.bootstrap_discount * bootstrap_value
    return jnp.where(plan.valid, target, 0.0)


def value_prefix_targets(reward, alive, unroll_steps: int, horizon: int) -> jax.Array:
    """[B, K] value-prefix targets for unrolled steps 1..K.

    Target at step k is the sum of rewards r_s..r_{k-1} since the last LSTM reset
    s = ((k-1) // horizon) * horizon, counting only rewards of row 0's episode.

    Args:
      reward: [B, W] window rewards.
      alive: [B, K+1] rows in row 0's episode.
    """
    masked = jnp.where(alive[:, :unroll_steps], reward[:, :unroll_steps], 0.0)  # [B, K]
    steps = jnp.arange(unroll_steps)
    same_window = (steps[None, :] // horizon) == (steps[:, None] // horizon)  # [K(target), K(src)]
    include = same_window & (steps[None, :] <= steps[:, None])
    return masked @ include.T.astype(masked.dtype)


def off_policy_horizon(age_steps, td_steps: int, age_per_step: float) -> jax.Array:
    """EfficientZero's off-policy correction: horizon = clip(n - age // age_per_step, 1, n).

    Args:
      age_steps: [B] real steps since the window's first row was collected.
      age_per_step: real steps of age that cost one step of horizon (ratio x run length).
    """
    lost = jnp.floor(age_steps / jnp.maximum(age_per_step, 1.0)).astype(jnp.int32)
    return jnp.clip(td_steps - lost, 1, td_steps)
