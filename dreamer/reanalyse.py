"""Buffer-wide reanalysis: dreaming over stored experience as a pass of its own.

Per-update reanalysis (EfficientZero) re-searches the sampled positions of every batch inside the
update. The pass instead re-searches stored observations in big batches, with the target network,
and writes the fresh policy targets and root values into the replay, each row stamped with the
version of the network that made it (`ReplayState.target_version`). Sampled windows then read
fresh targets without searching inside the update.

The search is the one per-update reanalysis runs (the run's search, `search.make_search_for`,
with the target network and root noise on, as EfficientZero's reanalysis does), so the targets are
the same for the same network, rows and keys (a test checks it bit for bit); the off-policy
horizon, value prefixes and value targets are still computed per sampled window by the learner.

A run with the pass on (`train.reanalyse_pass_interval` > 0) re-searches the whole replay every
that many updates (with the target refreshed as often, right after each refresh), and with
`train.reanalyse_pass_new_rows` also, before each learner phase, the rows whose targets the
current target network did not make (`stale_rows`): the rows collected since the last pass. Then
every sampled position reads the target network's search.

Which rows first: those whose targets are oldest (acting search, then older networks), and among
equals `train.reanalyse_pass_order`: "newest" rows first, or highest "priority" first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dreamer import replay as replay_lib
from dreamer.config import Config
from dreamer.learner import TrainState, target_version
from dreamer.networks import WorldModel, agent_input
from dreamer.search import make_search_for


def pass_chunks(config: Config, stored_rows: int, whole: bool = False) -> int:
    """Search calls of `train.reanalyse_pass_chunk` roots one pass makes when the replay holds
    `stored_rows` rows (all streams): enough to cover min(stored, `train.reanalyse_pass_rows`),
    0 meaning all stored rows; with `whole`, all stored rows whatever that field says (a pass of
    `dreamer dream`). Each call costs chunk x simulations model steps, also where its last roots
    fall past the stored rows (they are searched and not written)."""
    t = config.train
    capped = t.reanalyse_pass_rows and not whole
    wanted = min(t.reanalyse_pass_rows, stored_rows) if capped else stored_rows
    return -(-wanted // t.reanalyse_pass_chunk)


def stale_rows(replay_state: replay_lib.ReplayState, updates, config: Config) -> jax.Array:
    """[] int32: stored rows whose policy targets the current target network (the one after
    `updates` updates) did not make: the acting search's, or an older network's. A pass of
    `pass_chunks(config, stale_rows(...))` calls re-searches them first (`pass_order`)."""
    stored = (replay_state.global_index >= 0)[:, None]
    old = replay_state.target_version < target_version(updates, config)
    return jnp.sum(stored & old, dtype=jnp.int32)


def pass_cost(config: Config, chunks: int) -> int:
    """Latent model steps a pass of `chunks` search calls spends (for the ledger)."""
    return chunks * config.train.reanalyse_pass_chunk * config.search.simulations_per_root


def pass_order(replay_state: replay_lib.ReplayState, order: str) -> jax.Array:
    """Flat (slot * N + stream) indices of the replay's cells, the ones to re-search first first:
    oldest target version, then the newest rows ("newest") or the highest priority
    ("priority"); empty cells last."""
    empty = replay_state.global_index < 0  # [capacity]
    version = jnp.where(empty[:, None], jnp.iinfo(jnp.int32).max, replay_state.target_version)
    if order == "newest":
        tie = -jnp.broadcast_to(replay_state.global_index[:, None], version.shape)
    elif order == "priority":
        tie = -replay_state.priority
    else:
        raise ValueError(f"train.reanalyse_pass_order must be 'newest' or 'priority', got {order!r}")
    return jnp.lexsort((tie.reshape(-1), version.reshape(-1)))  # the last key sorts first


def make_reanalyse_pass(model: WorldModel, config: Config):
    """`reanalyse_pass(train_state, replay_state, key, num_chunks) -> replay_state`.

    Pure; jit it (donating the replay). Searches `num_chunks` ([] int32, see `pass_chunks`)
    chunks of `train.reanalyse_pass_chunk` stored observations each with the target network,
    in `pass_order`, and writes their search policy, root value and the target network's version
    into the replay. One compile serves every pass: the chunk count is an argument.

    With a recurrent memory (`model.memory=recurrent`) a row is searched from the memory it was
    acted with, as stored, without the learner's burn-in.

    Chunk i is one call of the run's search (`search.make_search_for`) keyed
    `chunk_key(key, i)`. Gumbel noise is drawn per call ([chunk, A] from its key), so a row's
    target depends on the chunk size through the noise it draws (another chunk size: other draws
    from the same distribution), and on nothing else.
    """
    t = config.train
    chunk = t.reanalyse_pass_chunk
    search = make_search_for(model, config)

    def search_chunk(params, key, observation, action_mask):
        out = search(params, key, observation, action_mask)
        return out.policy, out.value

    def reanalyse_pass(train_state: TrainState, replay_state: replay_lib.ReplayState, key,
                       num_chunks):
        streams = replay_state.num_streams
        order = pass_order(replay_state, t.reanalyse_pass_order)
        padded = -(-order.shape[0] // chunk) * chunk
        order = jnp.concatenate([order, jnp.full((padded - order.shape[0],), -1, order.dtype)])
        version = target_version(train_state.updates, config).astype(jnp.int32)

        def body(i, state: replay_lib.ReplayState):
            cells = jax.lax.dynamic_slice(order, (i * chunk,), (chunk,))
            slot, stream = jnp.maximum(cells, 0) // streams, jnp.maximum(cells, 0) % streams
            valid = (cells >= 0) & (state.global_index[slot] >= 0)
            rows = state.rows
            # a recurrent memory: the one the row was acted with (no burn-in here)
            memory = None if rows.memory is None else rows.memory[slot, stream]
            policy, value = search_chunk(train_state.target_params, chunk_key(key, i),
                                         agent_input(rows.observation[slot, stream], memory),
                                         rows.action_mask[slot, stream])
            # roots past the stored rows were searched (the chunk has a fixed size) and are
            # dropped here: their slot is out of range
            slot = jnp.where(valid, slot, state.capacity)
            rows = rows._replace(
                policy=rows.policy.at[slot, stream].set(policy, mode="drop"),
                value=rows.value.at[slot, stream].set(value, mode="drop"))
            return state.replace(rows=rows, target_version=state.target_version.at[
                slot, stream].set(version, mode="drop"))

        return jax.lax.fori_loop(0, num_chunks, body, replay_state)

    return reanalyse_pass


def chunk_key(key, index: int):
    """The key the pass's `index`-th search call consumes (for tests that repeat a call)."""
    return jax.random.fold_in(key, index)
