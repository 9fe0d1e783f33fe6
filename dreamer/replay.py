"""Prioritized replay of trajectory streams, as a pytree with pure `init/add/sample/update_priorities`.

Each of the N world copies writes one continuous stream of rows into a ring of `capacity` rows, so
memory is fixed at `capacity x N` rows whatever the run length. A row holds the observation the
agent acted on, the action, the reward and end flags of that transition, and the search's policy and
value. Because worlds auto-reset, the row after an episode's last row starts the next episode; the
end flags tell training windows where to stop.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import struct


class Rows(NamedTuple):
    """Rows to add, leading dims [L, N] (L steps of N copies)."""

    observation: jax.Array  # [L, N, *obs]
    action: jax.Array  # [L, N] int32
    reward: jax.Array  # [L, N] float32
    terminated: jax.Array  # [L, N] bool
    truncated: jax.Array  # [L, N] bool
    policy: jax.Array  # [L, N, A] float32 search policy when acting
    value: jax.Array  # [L, N] float32 search root value when acting
    action_mask: jax.Array  # [L, N, A] bool valid actions at the observation
    memory: jax.Array | None = None  # [L, N, M] the agent's memory before the observation
    # (`model.memory=recurrent`; None for a model without one)


@struct.dataclass
class ReplayState:
    """Ring buffer of N streams.

    Attributes:
      rows: Rows with leading dims [capacity, N].
      priority: [capacity, N] float32 (0 for empty rows).
      global_index: [capacity] int32 index of the row in its stream since the start (-1 empty).
      num_rows: [] int32 rows added per stream so far.
      max_priority: [] float32 priority given to new rows: the largest stored priority.
      target_version: [capacity, N] int32 which network made the row's policy and value: -1 the
        acting search; v >= 0 the target network of update v, in a buffer-wide reanalysis pass
        (`dreamer.reanalyse`).
    """

    rows: Rows
    priority: jax.Array
    global_index: jax.Array
    num_rows: jax.Array
    max_priority: jax.Array
    target_version: jax.Array

    @property
    def capacity(self) -> int:
        return self.priority.shape[0]

    @property
    def num_streams(self) -> int:
        return self.priority.shape[1]


class Window(NamedTuple):
    """A sampled training window of W consecutive rows of one stream, leading dims [B, W]; with
    `before` rows ahead of it (`sample`), [B, before + W] where `start` is the row at index
    `before`."""

    rows: Rows
    present: jax.Array  # [B, W] bool, the row exists (not past the newest row)
    start: jax.Array  # [B] int32 ring index of the first row
    stream: jax.Array  # [B] int32 stream index
    age: jax.Array  # [B] int32 rows written to the stream since the window's first row
    weight: jax.Array  # [B] float32 importance-sampling weight, max 1
    version: jax.Array  # [B, W] int32 the rows' target_version


def init(example: Rows, capacity: int) -> ReplayState:
    """An empty replay shaped like `example` (leading dims [1, N] or [L, N]; only shapes used)."""
    rows = jax.tree.map(lambda x: jnp.zeros((capacity, *x.shape[1:]), x.dtype), example)
    num_streams = example.action.shape[1]
    return ReplayState(
        rows=rows,
        priority=jnp.zeros((capacity, num_streams), jnp.float32),
        global_index=jnp.full((capacity,), -1, jnp.int32),
        num_rows=jnp.zeros((), jnp.int32),
        max_priority=jnp.ones((), jnp.float32),
        target_version=jnp.full((capacity, num_streams), -1, jnp.int32),
    )


def add(state: ReplayState, rows: Rows) -> ReplayState:
    """Appends L rows to every stream, overwriting the oldest; new rows get the max priority."""
    length = rows.action.shape[0]
    chex.assert_equal(rows.action.shape[1], state.num_streams)
    if length > state.capacity:
        raise ValueError(f"adding {length} rows to a replay of capacity {state.capacity}")
    global_index = state.num_rows + jnp.arange(length, dtype=jnp.int32)
    slots = global_index % state.capacity
    new_rows = jax.tree.map(lambda buf, x: buf.at[slots].set(x.astype(buf.dtype)), state.rows, rows)
    return state.replace(
        rows=new_rows,
        priority=state.priority.at[slots].set(state.max_priority),
        global_index=state.global_index.at[slots].set(global_index),
        num_rows=state.num_rows + length,
        target_version=state.target_version.at[slots].set(-1),
    )


def annealed_beta(config, updates):
    """The importance-sampling exponent at learner update `updates`: `config.beta`, rising
    linearly to 1 over `config.beta_anneal_updates` updates (EfficientZero V1 and V2 anneal it
    over all their training steps) and 1 after; constant when that is 0."""
    if config.beta_anneal_updates <= 0:
        return config.beta
    progress = jnp.minimum(jnp.asarray(updates, jnp.float32) / config.beta_anneal_updates, 1.0)
    return config.beta + (1.0 - config.beta) * progress


def sample(
    state: ReplayState, key: chex.PRNGKey, batch_size: int, window: int, alpha: float, beta: float,
    replace: bool = True, before: int = 0,
) -> Window:
    """Samples `batch_size` windows of `window` rows, with probability priority^alpha.

    A row can start a window once the next row of its stream exists (so a one-step target
    exists). Importance weights are (N P(i))^-beta normalised by the batch maximum (Schaul et al.).
    `replace=False` draws distinct start rows (EfficientZero's `np.random.choice(...,
    replace=False, p=...)`) by the Gumbel top-k trick: successive draws in proportion to P among
    the rows not drawn yet; the weights use P(i) as EfficientZero's do. With fewer startable rows
    than `batch_size`, the rest repeat the likeliest row.

    `before` > 0 also gathers the `before` rows ahead of each window's first row (a recurrent
    memory's burn-in): the window then has `before + window` rows, and `present` is False for
    those of them that are not stored (before the stream's first row, or overwritten).
    """
    capacity, num_streams = state.capacity, state.num_streams
    startable = (state.global_index >= 0) & (state.global_index <= state.num_rows - 2)
    scores = jnp.where(startable[:, None], state.priority**alpha, 0.0)
    flat = scores.reshape(-1)
    total = flat.sum()
    probs = flat / jnp.maximum(total, 1e-12)
    if replace:
        index = jax.random.choice(key, flat.shape[0], (batch_size,), p=probs)
    else:
        logits = jnp.where(probs > 0, jnp.log(jnp.where(probs > 0, probs, 1.0)), -jnp.inf)
        _, index = jax.lax.top_k(logits + jax.random.gumbel(key, probs.shape), batch_size)
    # `choice` inverts a float32 cumulative sum, which XLA does not compute monotonically: once
    # in millions of draws it lands on a cell that cannot start a window (probability 0), whose
    # importance weight 0^-beta is infinite and turns every loss of the batch into NaN (a
    # minatar/breakout run stopped so at update 45,935). Such a draw takes the likeliest cell.
    index = jnp.where(probs[index] > 0, index, jnp.argmax(probs))
    start, stream = index // num_streams, index % num_streams
    count = startable.sum() * num_streams
    weight = (count * probs[index]) ** (-beta)
    weight = weight / weight.max()
    offsets = jnp.arange(-before, window, dtype=jnp.int32)
    slots = (start[:, None] + offsets[None, :]) % capacity  # [B, before + W]
    row_index = state.global_index[start][:, None] + offsets[None, :]
    oldest = jnp.maximum(state.num_rows - capacity, 0)
    present = (row_index < state.num_rows) & (row_index >= oldest)
    rows = jax.tree.map(lambda x: x[slots, stream[:, None]], state.rows)
    age = state.num_rows - 1 - state.global_index[start]
    version = state.target_version[slots, stream[:, None]]
    return Window(rows=rows, present=present, start=start, stream=stream, age=age, weight=weight,
                  version=version)


def update_priorities(
    state: ReplayState, start: jax.Array, stream: jax.Array, priority: jax.Array
) -> ReplayState:
    """Sets the priorities of sampled rows ([B] indices, [B] new priorities > 0).

    New rows then enter at the largest priority currently stored (not the largest ever seen), so
    one early spike does not fix the entry priority for the rest of the run.
    """
    new = state.priority.at[start, stream].set(priority)
    return state.replace(priority=new, max_priority=jnp.maximum(new.max(), 1e-6))


def size(state: ReplayState) -> jax.Array:
    """Rows held (all streams)."""
    return jnp.minimum(state.num_rows, state.capacity) * state.num_streams
