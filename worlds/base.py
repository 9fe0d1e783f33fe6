"""The one world interface every part of `dreamer` builds on.

Two kinds of worlds share the same `TimeStep` fields and the same `WorldSpec`:

* `JaxWorld`: pure, jittable, vmappable `reset(key)` / `step(state, action, key)` with auto-reset,
  so a whole act loop can live inside one `lax.scan`.
* `HostWorld`: N parallel copies of a host-side environment (ALE, gymnasium) behind a batched numpy
  `reset(seed)` / `step(actions)` with auto-reset.

Auto-reset convention (both kinds): when a step ends an episode (`terminated | truncated`), the
returned `reward` and flags belong to the finished episode and `observation` / `action_mask` are the
first ones of the next episode.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

ObservationKind = Literal["vector", "image", "tokens"]


@dataclasses.dataclass(frozen=True)
class WorldSpec:
    """Static description of a world.

    Attributes:
      name: registered name, e.g. `minatar/breakout`.
      observation_shape: shape of one observation, e.g. `(10, 10, 4)`.
      observation_dtype: numpy dtype name of observations, e.g. `"float32"`, `"uint8"`.
      num_actions: size of the discrete action space.
      action_names: human-readable name of each action.
      max_episode_steps: agent steps after which an episode is truncated.
      observation_kind: `"vector"`, `"image"` (H, W, C) or `"tokens"` (token ids).
      frames_per_step: emulator frames per agent step (4 for Atari's frame skip, else 1).
      reward_range: (lowest, highest) reward of a single step.
      has_action_mask: whether `TimeStep.action_mask` ever masks an action.
      history: how many of the episode's last observations each observation joins along its
        last axis, oldest first (`worlds.history`); 1: one observation.
    """

    name: str
    observation_shape: tuple[int, ...]
    observation_dtype: str
    num_actions: int
    action_names: tuple[str, ...]
    max_episode_steps: int
    observation_kind: ObservationKind = "vector"
    frames_per_step: int = 1
    reward_range: tuple[float, float] = (-float("inf"), float("inf"))
    has_action_mask: bool = False
    history: int = 1

    def __post_init__(self):
        if len(self.action_names) != self.num_actions:
            raise ValueError(
                f"world {self.name!r}: {len(self.action_names)} action names for "
                f"{self.num_actions} actions"
            )


@struct.dataclass
class TimeStep:
    """What the agent sees after `reset` or `step` (leading batch dims allowed).

    Attributes:
      observation: [*observation_shape] the observation to act on.
      reward: [] float32 reward of the last transition (0 after reset).
      terminated: [] bool, the last transition ended the episode in a terminal state.
      truncated: [] bool, the episode was cut by the time limit (not a terminal state).
      action_mask: [num_actions] bool, the actions that are valid now (all True if unmasked).
    """

    observation: Any
    reward: Any
    terminated: Any
    truncated: Any
    action_mask: Any

    @property
    def done(self):
        return self.terminated | self.truncated


@struct.dataclass
class EpisodeState:
    """Carried state of a JAX world: the game's own state plus the episode's step count.

    Attributes:
      game: the game's own pytree state.
      step_count: [] int32 agent steps taken in the current episode.
    """

    game: Any
    step_count: jax.Array


class JaxWorld:
    """Base of JAX-native worlds. A game only writes `_reset` and `_step`.

    `step` adds the time limit and auto-reset once, for every game.
    """

    is_jax = True
    spec: WorldSpec

    # --- what a game writes -------------------------------------------------------------------
    def _reset(self, key: chex.PRNGKey) -> tuple[Any, jax.Array]:
        """Returns (game_state, observation) of a fresh episode."""
        raise NotImplementedError

    def _step(self, game: Any, action: jax.Array, key: chex.PRNGKey):
        """Returns (game_state, observation, reward, terminated) of one transition."""
        raise NotImplementedError

    def _action_mask(self, game: Any) -> jax.Array:
        """[num_actions] bool: valid actions in `game` (all valid unless a game says otherwise)."""
        del game
        return jnp.ones((self.spec.num_actions,), dtype=bool)

    # --- the interface ------------------------------------------------------------------------
    def reset(self, key: chex.PRNGKey) -> tuple[EpisodeState, TimeStep]:
        """Starts an episode. Pure; jit and vmap freely."""
        game, obs = self._reset(key)
        state = EpisodeState(game=game, step_count=jnp.zeros((), jnp.int32))
        return state, TimeStep(
            observation=obs,
            reward=jnp.zeros((), jnp.float32),
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
            action_mask=self._action_mask(game),
        )

    def step(
        self, state: EpisodeState, action: jax.Array, key: chex.PRNGKey
    ) -> tuple[EpisodeState, TimeStep]:
        """One agent step with time limit and auto-reset. Pure; jit and vmap freely.

        For a batch of copies, `step_batch` gives the same result (faster on a CPU).
        """
        reset_key, game, obs, reward, terminated, truncated, step_count = self._advance(
            state, action, key)
        done = terminated | truncated
        reset_game, reset_obs = self._reset(reset_key)
        game = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_game, game)
        obs = jnp.where(done, reset_obs, obs)
        return self._after(game, obs, reward, terminated, truncated, step_count)

    def step_batch(
        self, state: EpisodeState, action: jax.Array, key: jax.Array
    ) -> tuple[EpisodeState, TimeStep]:
        """`jax.vmap(step)` over a leading batch axis of `state`, `action` [B] and `key` [B], with
        the same result, computing the auto-reset only for the copies whose episode ended.

        Under `vmap`, `step`'s reset is computed for every copy at every step and then discarded
        where the episode goes on, which is most of the cost of worlds whose reset generates a
        level (the text adventures draw a map). Here, while at most a quarter of the copies ended,
        only those are reset, in blocks of B/32 copies (at least 1), so that a step where no
        episode ended resets nothing; when more ended, every copy's reset is computed once and kept
        where the episode ended, as under `vmap`.

        This is for CPUs. On an accelerator, where the reset's arithmetic runs in parallel and
        control flow is what costs, it is `vmap(step)` itself: on one H200 the block path stepped
        `text/coin`, `minatar/breakout` and `catch` 2-5x slower than `vmap(step)` at B = 16, 256
        and 4,096 (2026-11-27), while on a CPU core it stepped `text/coin` 2.8x faster at B = 256.
        """
        if jax.default_backend() != "cpu":
            return jax.vmap(self.step)(state, action, key)
        reset_key, game, obs, reward, terminated, truncated, step_count = jax.vmap(
            self._advance)(state, action, key)
        done = terminated | truncated
        batch = done.shape[0]
        block = max(1, batch // 32)
        ended = done.sum()

        def reset_ended(game_obs):  # few ended: reset them block by block
            # indices of the ended copies, then `batch` (out of range: gathers clip, writes drop)
            where = jnp.nonzero(done, size=batch + block, fill_value=batch)[0]

            def reset_block(i, game_obs):
                game, obs = game_obs
                rows = jax.lax.dynamic_slice(where, (i * block,), (block,))
                new_game, new_obs = jax.vmap(self._reset)(reset_key[jnp.minimum(rows, batch - 1)])
                put = lambda old, new: old.at[rows].set(new, mode="drop")  # noqa: E731
                return jax.tree.map(put, game, new_game), put(obs, new_obs)

            blocks = (ended + block - 1) // block
            return jax.lax.fori_loop(0, blocks, reset_block, game_obs)

        def reset_all(game_obs):  # many ended: one reset of every copy is cheaper than a loop
            game, obs = game_obs
            new_game, new_obs = jax.vmap(self._reset)(reset_key)
            pick = lambda old, new: jnp.where(  # noqa: E731
                done.reshape(-1, *[1] * (old.ndim - 1)), new, old)
            return jax.tree.map(pick, game, new_game), pick(obs, new_obs)

        game, obs = jax.lax.cond(4 * ended > batch, reset_all, reset_ended, (game, obs))
        return jax.vmap(self._after)(game, obs, reward, terminated, truncated, step_count)

    def _advance(self, state: EpisodeState, action, key):
        """The game's transition and the time limit, before the auto-reset."""
        step_key, reset_key = jax.random.split(key)
        game, obs, reward, terminated = self._step(state.game, action, step_key)
        step_count = state.step_count + 1
        truncated = jnp.logical_and(~terminated, step_count >= self.spec.max_episode_steps)
        return reset_key, game, obs, reward, terminated, truncated, step_count

    def _after(self, game, obs, reward, terminated, truncated, step_count):
        """The new state and time step once ended episodes have been replaced by fresh ones."""
        done = terminated | truncated
        new_state = EpisodeState(game=game, step_count=jnp.where(done, 0, step_count))
        return new_state, TimeStep(
            observation=obs,
            reward=jnp.asarray(reward, jnp.float32),
            terminated=jnp.asarray(terminated, bool),
            truncated=truncated,
            action_mask=self._action_mask(game),
        )

    def close(self) -> None:
        """Releases nothing: a JAX world holds no resources (as `HostWorld.close`, so any world
        can be closed)."""

    def __repr__(self):
        return f"<{type(self).__name__} {self.spec.name}>"


class HostWorld:
    """Base of host-side worlds: N parallel copies behind a batched numpy interface.

    Subclasses implement `reset(seed)` and `step(actions)`, both returning a batched `TimeStep`
    of numpy arrays with leading dim `num_envs`, auto-resetting finished copies. `frames` counts
    emulator frames consumed so far (agent steps times frame skip, plus no-op starts).

    Options that only evaluation copies get (held-out episodes) are the registry's
    (`worlds.eval_options`), not the world's.
    """

    is_jax = False
    spec: WorldSpec
    num_envs: int
    frames: int = 0

    def reset(self, seed: int) -> TimeStep:
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> TimeStep:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the world's resources (processes, emulators)."""

    def get_state(self) -> bytes | None:
        """The complete state of every copy (episodes in progress, RNGs, `frames`) as bytes, or
        None for a world that cannot be saved (an emulator or a process outside Python).

        A checkpoint holds these bytes so that a resumed run continues the same episodes; a world
        that returns None restarts its episodes on resume instead.
        """
        return None

    def set_state(self, state: bytes) -> None:
        """Puts back a state from `get_state` of a world built with the same name and options."""
        raise NotImplementedError(f"{self.spec.name} cannot restore a saved state")

    def _reset_timestep(self, observation: np.ndarray, action_mask: np.ndarray) -> TimeStep:
        """The batched TimeStep after a reset: zero rewards, no ends."""
        n = self.num_envs
        return TimeStep(
            observation=observation,
            reward=np.zeros((n,), np.float32),
            terminated=np.zeros((n,), bool),
            truncated=np.zeros((n,), bool),
            action_mask=action_mask,
        )

    def _check_actions(self, actions) -> np.ndarray:
        """[N] integer actions, or a ValueError naming the expected shape."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(
                f"{self.spec.name}: actions of shape {actions.shape}, expected ({self.num_envs},)"
            )
        return actions

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{type(self).__name__} {self.spec.name} x{self.num_envs}>"


World = JaxWorld | HostWorld
