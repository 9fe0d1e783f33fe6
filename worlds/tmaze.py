"""T-maze (Bakker, "Reinforcement learning with long short-term memory", NIPS 2001): a cue shown
only at the start of a corridor says which arm of the junction at its end holds the reward.

A policy of the current observation alone cannot do better than chance at the junction, where
every episode looks the same; an agent that remembers the first observation (e.g. `history=k`
with k > `length`, or a recurrent state) can win every episode. It is the smallest world that
tells an agent with memory from one without, and trains in seconds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from worlds.base import JaxWorld, WorldSpec
from worlds.errors import WorldOptionError


@struct.dataclass
class TMazeState:
    position: jax.Array  # [] int32, 0 (start) .. length (the junction)
    cue: jax.Array  # [] int32, 0: the reward is up, 1: down


class TMaze(JaxWorld):
    """A corridor of `length` steps from the start to a junction.

    Observation: [length + 3] float32: the position one-hot (length + 1), then the cue as two
    bits (up, down) that are set at the start only. Actions: forward, up, down, masked so that
    the only choice is the one memory decides: in the corridor only forward is legal (one step
    along it), at the junction only up and down, which end the episode with +1 if they follow the
    cue and 0 if not. An episode lasts length + 1 steps. A policy of the current observation wins
    half the episodes at best; one that remembers the start wins them all.
    """

    def __init__(self, length: int = 3):
        if length < 1:
            raise WorldOptionError(f"tmaze needs length >= 1, got {length}")
        self.length = length
        self.spec = WorldSpec(
            name="tmaze",
            observation_shape=(length + 3,),
            observation_dtype="float32",
            num_actions=3,
            action_names=("forward", "up", "down"),
            max_episode_steps=length + 2,  # never reached: episodes end at step length + 1
            observation_kind="vector",
            reward_range=(0.0, 1.0),
            has_action_mask=True,
        )

    def _observe(self, s: TMazeState) -> jax.Array:
        place = jax.nn.one_hot(s.position, self.length + 1, dtype=jnp.float32)
        cue = jax.nn.one_hot(s.cue, 2, dtype=jnp.float32) * (s.position == 0)
        return jnp.concatenate([place, cue])

    def _reset(self, key):
        s = TMazeState(position=jnp.zeros((), jnp.int32),
                       cue=jax.random.randint(key, (), 0, 2, jnp.int32))
        return s, self._observe(s)

    def _action_mask(self, game: TMazeState) -> jax.Array:
        at_junction = game.position == self.length
        return jnp.stack([~at_junction, at_junction, at_junction])

    def _step(self, game: TMazeState, action, key):
        del key
        action = jnp.asarray(action, jnp.int32)
        at_junction = game.position == self.length
        turned = at_junction & (action > 0)
        position = jnp.where(action == 0, jnp.minimum(game.position + 1, self.length),
                             game.position)
        s = TMazeState(position=position, cue=game.cue)
        reward = jnp.where(turned & (action - 1 == game.cue), 1.0, 0.0)
        return s, self._observe(s), reward, turned
