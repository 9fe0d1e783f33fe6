"""A history of the last k observations for any world: the frame stack, for images, vectors and
token sequences alike (issue #24, candidate (a)).

`worlds.make(name, history=k)` (or `--set world_options.history=k`) shows the agent, at every
step, the episode's last `k` observations joined along their last axis, oldest first:

* images `[H, W, C]` become `[H, W, k*C]` (frames stacked on the channel axis, as Atari's);
* vectors `[D]` become `[k*D]`;
* token sequences `[L]` become `[k*L]` (each observation keeps its own zero padding, so the
  token encoder, which takes any length, sees k sequences side by side).

At the start of an episode (a reset, or the auto-reset after an end) the stack holds the first
observation k times, as the DQN and EfficientZero frame stacks do (their reset pushes the first
frame k times): the stack is always made of real observations of the episode, never of another
episode's nor of blanks a world never shows (an all-zero token sequence, a black frame). A step
drops the oldest and appends the new one. `k = 1` (the default) is no wrapper at all: the world
exactly as built.

Only observations are stacked, not actions: the stack keeps the observation's kind and dtype, so
every encoder reads it unchanged (an action has no token id in a token world's vocabulary, and no
natural value in a uint8 frame), and the worlds that hide what was done already show it (the text
worlds' `history` field of past commands); EfficientZero's Atari representation, too, reads 4
frames and no actions.

One implementation serves both kinds of world: the pure array functions `fill`, `push` and
`renew` (numpy or JAX arrays alike), used by `HistoryWorld` (a `JaxWorld`: the stack is part of
the pure state, so reset, step, `step_batch`, auto-reset, vmap and checkpoints need nothing more)
and by `HostHistoryWorld` (a `HostWorld`: the stack is kept beside the world's copies, and saved
with them by `get_state`).
"""

from __future__ import annotations

import dataclasses
import numbers
import pickle
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from worlds.base import HostWorld, JaxWorld, TimeStep, WorldSpec
from worlds.errors import WorldOptionError

# --- the stack, as pure array functions (numpy or JAX) -------------------------------------------


def _xp(x):
    return jnp if isinstance(x, jax.Array) else np


def fill(observation, k: int):
    """[..., W] -> [..., k*W]: a new episode's stack, the first observation k times."""
    return _xp(observation).concatenate([observation] * k, axis=-1)


def push(stacked, observation):
    """[..., k*W], [..., W] -> [..., k*W]: the oldest observation dropped, `observation`
    appended."""
    width = observation.shape[-1]
    return _xp(observation).concatenate([stacked[..., width:], observation], axis=-1)


def renew(stacked, observation, done):
    """Batched `push`, with `fill` where `done` [N] (`observation` is then the first one of the
    copy's next episode, by the auto-reset convention of `worlds.base`)."""
    xp = _xp(observation)
    k = stacked.shape[-1] // observation.shape[-1]
    done = xp.reshape(done, done.shape + (1,) * (observation.ndim - done.ndim))
    return xp.where(done, fill(observation, k), push(stacked, observation))


def newest(stacked, width: int):
    """[..., k*W] -> [..., W]: the newest observation of a stack."""
    return stacked[..., stacked.shape[-1] - width:]


def stacked_spec(spec: WorldSpec, k: int) -> WorldSpec:
    """`spec` with observations of k stacked along the last axis."""
    shape = tuple(spec.observation_shape)
    return dataclasses.replace(spec, observation_shape=shape[:-1] + (shape[-1] * k,),
                               history=spec.history * k)


# --- the option -------------------------------------------------------------------------------


def check_history(name: str, history: Any) -> int:
    """The `history` option as an int >= 1, or a one-line WorldOptionError naming the fix."""
    whole = isinstance(history, numbers.Integral) and not isinstance(history, bool)
    if not whole or history < 1:
        raise WorldOptionError(
            f"world {name!r}: history must be a whole number >= 1 (how many recent observations "
            f"the agent sees; 1 = only the current one), got {history!r}; e.g. history=4 "
            "(--set world_options.history=4), or drop it")
    return int(history)


def with_history(world: JaxWorld | HostWorld, k: int) -> JaxWorld | HostWorld:
    """`world` showing its last `k` observations (the world itself for k = 1).

    Raises:
      WorldOptionError: for a world whose observations have no axis to stack along.
    """
    if k == 1:
        return world
    if not world.spec.observation_shape:
        raise WorldOptionError(
            f"world {world.spec.name!r}: history={k} needs observations with at least one axis, "
            "and this world's are scalars; drop the history option")
    return HistoryWorld(world, k) if world.is_jax else HostHistoryWorld(world, k)


class _Forwarding:
    """What both wrappers share: the inner world's attributes (`vocabulary`, `commands`, ...)
    read through, and `render` of the newest observation where the inner world renders."""

    world: Any
    history: int

    def __getattr__(self, name):
        if name in ("world", "history", "__setstate__") or name.startswith("__"):
            raise AttributeError(name)
        if name == "render":
            inner = self.world.render  # AttributeError where the world has none
            width = self.world.spec.observation_shape[-1]
            return lambda observation: inner(newest(np.asarray(observation), width))
        return getattr(self.world, name)


@struct.dataclass
class HistoryGame:
    """The state of a `HistoryWorld`'s game: the inner game and the stack it shows.

    Attributes:
      game: the inner world's game state.
      stack: [*observation_shape[:-1], k*W] the last k observations, oldest first.
    """

    game: Any
    stack: Any


class HistoryWorld(_Forwarding, JaxWorld):
    """A JAX world showing its last `history` observations (see the module docstring).

    The stack lives in the game state, so `step`'s auto-reset (and `step_batch`'s) starts a new
    episode's stack with the reset itself, and the same keys give the inner world's transitions,
    rewards, ends and masks exactly; the newest observation of the stack is the inner world's.
    """

    def __init__(self, world: JaxWorld, history: int):
        self.world, self.history = world, history
        self.spec = stacked_spec(world.spec, history)

    def _reset(self, key):
        game, observation = self.world._reset(key)
        stack = fill(observation, self.history)
        return HistoryGame(game=game, stack=stack), stack

    def _step(self, game: HistoryGame, action, key):
        inner, observation, reward, terminated = self.world._step(game.game, action, key)
        stack = push(game.stack, observation)
        return HistoryGame(game=inner, stack=stack), stack, reward, terminated

    def _action_mask(self, game: HistoryGame):
        return self.world._action_mask(game.game)

    def __repr__(self):
        return f"<HistoryWorld {self.spec.name} history={self.history}>"


class HostHistoryWorld(_Forwarding, HostWorld):
    """A host world showing each copy's last `history` observations (see the module docstring).

    The same seed and actions give the inner world's rewards, ends and masks exactly. `get_state`
    saves the stacks with the inner world's state (None where the inner world cannot be saved)."""

    def __init__(self, world: HostWorld, history: int):
        self.world, self.history = world, history
        self.spec = stacked_spec(world.spec, history)
        self.num_envs = world.num_envs
        self._stack: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return self.world.frames

    def reset(self, seed: int) -> TimeStep:
        ts = self.world.reset(seed)
        self._stack = fill(np.asarray(ts.observation), self.history)
        return ts.replace(observation=self._stack.copy())

    def step(self, actions: np.ndarray) -> TimeStep:
        if self._stack is None:
            raise RuntimeError(f"{self.spec.name}: call reset(seed) before step")
        ts = self.world.step(actions)
        self._stack = renew(self._stack, np.asarray(ts.observation),
                            np.asarray(ts.terminated) | np.asarray(ts.truncated))
        return ts.replace(observation=self._stack.copy())

    def close(self) -> None:
        self.world.close()

    def get_state(self) -> bytes | None:
        inner = self.world.get_state()
        if inner is None:
            return None
        return pickle.dumps({"world": inner, "history": self.history, "stack": self._stack})

    def set_state(self, state: bytes) -> None:
        saved = pickle.loads(state)
        if saved.get("history") != self.history:
            raise ValueError(f"{self.spec.name}: a state saved with history={saved.get('history')}"
                             f" cannot be put back into a world of history={self.history}")
        self.world.set_state(saved["world"])
        self._stack = None if saved["stack"] is None else np.array(saved["stack"])

    def __repr__(self):
        return f"<HostHistoryWorld {self.spec.name} x{self.num_envs} history={self.history}>"


__all__ = ["HistoryGame", "HistoryWorld", "HostHistoryWorld", "check_history", "fill", "newest",
           "push", "renew", "stacked_spec", "with_history"]
