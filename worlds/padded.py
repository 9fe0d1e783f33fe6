"""One observation shape and one action set for a sequence of worlds (continual learning).

A network has one input shape and one policy width, so an agent that learns several worlds in
turn sees each of them through a `PaddedWorld`: the world itself, with

* observations zero-padded along their last axis to the largest size among the worlds: MinAtar's
  10x10xC frames (C = 4 to 10) all become 10x10xC_max, the channels a game lacks always empty;
  vectors (D,) become (D_max,); token sequences pad with id 0, the token worlds' pad id;
* one common action set: the union of the worlds' action names, in order of first appearance
  (the k-th action called `n` in one world is the k-th called `n` in every other), so an action
  that means the same in two worlds is one output of the policy (MinAtar's `left` is one action
  in breakout and space invaders); the actions a world lacks are illegal there, through the
  legal-action mask every world already has (`TimeStep.action_mask`), which the search and the
  policy targets respect.

That is the whole mechanism; no world is special-cased. Sequences it cannot join are refused
(`IncompatibleWorldsError`, naming the worlds, what differs and the fix): different observation
kinds (image, vector, tokens), dtypes or ranks, or sizes that differ on any axis but the last (a
10x5 frame and a 10x10 frame; padding there would move the picture), and token worlds whose
vocabularies differ (the same id would mean different words). Host worlds are not wrapped here.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from worlds.base import JaxWorld, WorldSpec
from worlds.errors import WorldError
from worlds.history import HistoryWorld, with_history


class IncompatibleWorldsError(WorldError, ValueError):
    """Worlds that cannot share one network; the message names them, what differs and the fix."""


@dataclasses.dataclass(frozen=True)
class CommonInterface:
    """What every world of a sequence shows the agent.

    Attributes:
      observation_shape: the common observation shape (the largest last axis of the worlds).
      observation_dtype: numpy dtype name shared by the worlds.
      observation_kind: "vector", "image" or "tokens", shared by the worlds.
      action_names: the common action set: the union of the worlds' action names, in order of
        first appearance (a name that occurs k times in a world occurs k times here).
    """

    observation_shape: tuple[int, ...]
    observation_dtype: str
    observation_kind: str
    action_names: tuple[str, ...]

    def action_index(self, spec: WorldSpec) -> tuple[int, ...]:
        """[spec.num_actions] the common index of each of the world's actions."""
        common = _occurrence_keys(self.action_names)
        return tuple(common.index(k) for k in _occurrence_keys(spec.action_names))


def _occurrence_keys(names: Sequence[str]) -> list[tuple[str, int]]:
    """(name, k) for the k-th occurrence of each name, so repeated names match in order."""
    seen: collections.Counter = collections.Counter()
    keys = []
    for name in names:
        keys.append((name, seen[name]))
        seen[name] += 1
    return keys


def common_interface(specs: Sequence[WorldSpec], vocabularies: Sequence | None = None
                     ) -> CommonInterface:
    """The common interface of `specs` (see the module docstring).

    Args:
      specs: the worlds' specs, in the order they are learned.
      vocabularies: optional, each world's token vocabulary (None where it has none).

    Raises:
      IncompatibleWorldsError: worlds that cannot share one network.
    """
    if not specs:
        raise IncompatibleWorldsError("no worlds given")
    first = specs[0]

    def refuse(other: WorldSpec, what: str, fix: str) -> IncompatibleWorldsError:
        return IncompatibleWorldsError(
            f"worlds {first.name} and {other.name} cannot share one network: {what}; {fix}")

    separate = "train them in separate runs"
    for spec in specs[1:]:
        if spec.observation_kind != first.observation_kind:
            raise refuse(spec, f"{first.observation_kind} and {spec.observation_kind} "
                               "observations", separate)
        if spec.observation_dtype != first.observation_dtype:
            raise refuse(spec, f"observations of dtype {first.observation_dtype} and "
                               f"{spec.observation_dtype}", separate)
        a, b = first.observation_shape, spec.observation_shape
        if len(a) != len(b):
            raise refuse(spec, f"observations of rank {len(a)} {a} and {len(b)} {b}", separate)
        if a[:-1] != b[:-1]:
            raise refuse(spec, f"observations {a} and {b} differ before their last axis (only "
                               "the last axis, e.g. an image's channels, is padded)",
                         "give the worlds options that make their frames the same size, or "
                         + separate)
    if vocabularies is not None:
        known = [(s, v) for s, v in zip(specs, vocabularies, strict=True) if v is not None]
        for spec, vocabulary in known[1:]:
            if tuple(vocabulary) != tuple(known[0][1]):
                raise IncompatibleWorldsError(
                    f"worlds {known[0][0].name} and {spec.name} cannot share one network: their "
                    "token vocabularies differ (one id would mean different words); "
                    + separate)
    names: list[str] = []
    for spec in specs:
        keys = _occurrence_keys(names)
        names += [name for name, k in _occurrence_keys(spec.action_names) if (name, k) not in keys]
    size = max(spec.observation_shape[-1] for spec in specs) if first.observation_shape else None
    shape = first.observation_shape[:-1] + ((size,) if size is not None else ())
    return CommonInterface(observation_shape=shape, observation_dtype=first.observation_dtype,
                           observation_kind=first.observation_kind, action_names=tuple(names))


class PaddedWorld(JaxWorld):
    """A JAX world seen through a `CommonInterface`: its observations zero-padded on the last
    axis, its actions placed at their common indices, the common actions it lacks masked.

    Stepping it is stepping the world: the same keys give the same transitions, rewards and
    ends, and the observation's first `world.spec.observation_shape[-1]` entries of the last
    axis are the world's own (the rest are 0). The common action `a` plays the world's action
    `world_action[a]`; an action the world lacks is never legal (were it played anyway, it
    would play the world's action 0).

    A world that renders its observations as text (`render(observation) -> str`, the text
    adventures) renders here too, from the world's own part of a padded observation; a world
    without `render` gives a PaddedWorld without it.
    """

    def __init__(self, world: JaxWorld, interface: CommonInterface):
        if not world.is_jax:
            raise IncompatibleWorldsError(
                f"world {world.spec.name} is a host world; a sequence of worlds takes JAX worlds "
                "(catch, cartpole, minatar/*, text/*)")
        self.world, self.interface = world, interface
        spec = world.spec
        index = interface.action_index(spec)
        self.action_index = np.asarray(index, np.int32)  # [world A] -> common index
        world_action = np.zeros((len(interface.action_names),), np.int32)
        world_action[self.action_index] = np.arange(spec.num_actions, dtype=np.int32)
        self.world_action = world_action  # [common A] -> the world's action (0 where it lacks)
        self._pad = interface.observation_shape[-1] - spec.observation_shape[-1] if (
            spec.observation_shape) else 0
        self.spec = WorldSpec(
            name=spec.name,
            observation_shape=interface.observation_shape,
            observation_dtype=spec.observation_dtype,
            num_actions=len(interface.action_names),
            action_names=interface.action_names,
            max_episode_steps=spec.max_episode_steps,
            observation_kind=spec.observation_kind,
            frames_per_step=spec.frames_per_step,
            reward_range=spec.reward_range,
            has_action_mask=spec.has_action_mask or spec.num_actions < len(interface.action_names),
        )
        if callable(getattr(world, "render", None)):
            self.render = self._render

    def _render(self, observation) -> str:
        """The world's own rendering of a padded observation (its entries before the padding)."""
        own = self.world.spec.observation_shape[-1] if self.world.spec.observation_shape else None
        return self.world.render(observation[..., :own])

    def pad_observation(self, observation: jax.Array) -> jax.Array:
        """[*world obs] -> [*common obs]: zeros after the world's own entries of the last axis."""
        if not self._pad:
            return observation
        widths = [(0, 0)] * (observation.ndim - 1) + [(0, self._pad)]
        return jnp.pad(observation, widths)

    def _reset(self, key):
        game, obs = self.world._reset(key)
        return game, self.pad_observation(obs)

    def _step(self, game, action, key):
        inner = jnp.asarray(self.world_action)[action]
        game, obs, reward, terminated = self.world._step(game, inner, key)
        return game, self.pad_observation(obs), reward, terminated

    def _action_mask(self, game):
        mask = self.world._action_mask(game)
        common = jnp.zeros((self.spec.num_actions,), bool)
        return common.at[jnp.asarray(self.action_index)].set(mask)

    def __repr__(self):
        return f"<PaddedWorld {self.spec.name} {self.spec.observation_shape}x{self.spec.num_actions}>"


def pad_worlds(worlds: Sequence[JaxWorld]) -> list[JaxWorld]:
    """The worlds of a sequence, each seen through their common interface: `PaddedWorld`s, or,
    for worlds built with the same `history=k` option, `HistoryWorld`s of k padded observations
    (each observation is padded before it is stacked, so the k slots line up across worlds).

    Raises:
      IncompatibleWorldsError: a host world, worlds that cannot share one network, or worlds
        built with different `history` options.
    """
    for world in worlds:
        if not world.is_jax:
            raise IncompatibleWorldsError(
                f"world {world.spec.name} is a host world; a sequence of worlds takes JAX worlds "
                "(catch, cartpole, minatar/*, text/*)")
    histories = [w.history if isinstance(w, HistoryWorld) else 1 for w in worlds]
    if len(set(histories)) > 1:
        raise IncompatibleWorldsError(
            "worlds of one sequence must show the same history (observations stacked), got "
            + ", ".join(f"{w.spec.name}: {k}" for w, k in zip(worlds, histories, strict=True))
            + "; give them one history option")
    worlds = [w.world if isinstance(w, HistoryWorld) else w for w in worlds]
    interface = common_interface([w.spec for w in worlds],
                                 [getattr(w, "vocabulary", None) for w in worlds])
    return [with_history(PaddedWorld(w, interface), histories[0]) for w in worlds]


__all__ = ["CommonInterface", "IncompatibleWorldsError", "PaddedWorld", "common_interface",
           "pad_worlds"]
