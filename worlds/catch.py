"""Catch (bsuite): a ball falls down a grid; move the paddle on the bottom row to catch it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from worlds.base import JaxWorld, WorldSpec
from worlds.errors import WorldOptionError


@struct.dataclass
class CatchState:
    ball_row: jax.Array  # [] int32
    ball_col: jax.Array  # [] int32
    paddle_col: jax.Array  # [] int32


class Catch(JaxWorld):
    """Catch on a `rows` x `columns` grid. Reward +1 for a catch, -1 for a miss, at the bottom.

    Observation: [rows, columns, 1] float32 image with the ball and the paddle set to 1.
    Actions: left, stay, right. An episode lasts `rows - 1` steps.
    """

    def __init__(self, rows: int = 10, columns: int = 5):
        if rows < 2 or columns < 2:
            raise WorldOptionError(f"catch needs rows >= 2 and columns >= 2, got {rows}x{columns}")
        self.rows, self.columns = rows, columns
        self.spec = WorldSpec(
            name="catch",
            observation_shape=(rows, columns, 1),
            observation_dtype="float32",
            num_actions=3,
            action_names=("left", "stay", "right"),
            max_episode_steps=rows - 1,
            observation_kind="image",
            reward_range=(-1.0, 1.0),
        )

    def _observe(self, s: CatchState) -> jax.Array:
        board = jnp.zeros((self.rows, self.columns), jnp.float32)
        board = board.at[s.ball_row, s.ball_col].set(1.0)
        board = board.at[self.rows - 1, s.paddle_col].set(1.0)
        return board[..., None]

    def _reset(self, key):
        s = CatchState(
            ball_row=jnp.zeros((), jnp.int32),
            ball_col=jax.random.randint(key, (), 0, self.columns, jnp.int32),
            paddle_col=jnp.asarray(self.columns // 2, jnp.int32),
        )
        return s, self._observe(s)

    def _step(self, game: CatchState, action, key):
        del key
        paddle = jnp.clip(game.paddle_col + jnp.asarray(action, jnp.int32) - 1, 0, self.columns - 1)
        s = CatchState(ball_row=game.ball_row + 1, ball_col=game.ball_col, paddle_col=paddle)
        terminated = s.ball_row >= self.rows - 1
        reward = jnp.where(terminated, jnp.where(s.ball_col == paddle, 1.0, -1.0), 0.0)
        return s, self._observe(s), reward, terminated
