"""Replay: bounded ring of streams, windows, prioritized sampling and weights."""

import jax
import jax.numpy as jnp
import numpy as np

from dreamer import replay

# Jitted, as the learner runs them: eagerly, every primitive would compile on its own.
add = jax.jit(replay.add)
sample = jax.jit(replay.sample, static_argnums=(2, 3, 6),
                 static_argnames=("batch_size", "window", "replace"))
update_priorities = jax.jit(replay.update_priorities)


def _rows(length, streams, start=0, actions=3):
    t = jnp.arange(start, start + length, dtype=jnp.float32)[:, None] * jnp.ones((1, streams))
    return replay.Rows(
        observation=t[..., None],
        action=jnp.zeros((length, streams), jnp.int32),
        reward=t,
        terminated=jnp.zeros((length, streams), bool),
        truncated=jnp.zeros((length, streams), bool),
        policy=jnp.full((length, streams, actions), 1.0 / actions),
        value=jnp.zeros((length, streams)),
        action_mask=jnp.ones((length, streams, actions), bool),
    )


def test_ring_is_bounded_and_keeps_newest():
    state = replay.init(_rows(1, 2), capacity=10)
    nbytes = sum(x.nbytes for x in jax.tree.leaves(state))
    for i in range(7):
        state = add(state, _rows(4, 2, start=4 * i))
    assert sum(x.nbytes for x in jax.tree.leaves(state)) == nbytes
    assert int(state.num_rows) == 28
    assert int(replay.size(state)) == 20
    # ring slot of global row g is g % 10; the newest 10 rows are 18..27
    assert sorted(np.asarray(state.rows.reward[:, 0]).tolist()) == list(range(18, 28))


def test_windows_are_consecutive_and_flag_missing_rows():
    state = replay.init(_rows(1, 1), capacity=16)
    state = add(state, _rows(6, 1))
    w = sample(state, jax.random.key(0), 64, window=4, alpha=0.0, beta=0.0)
    first = np.asarray(w.rows.reward[:, 0])
    assert first.max() <= 4  # the newest row (5) cannot start a window
    for b in range(64):
        present = np.asarray(w.present[b])
        expected = first[b] + np.arange(4)
        np.testing.assert_array_equal(present, expected <= 5)
        np.testing.assert_array_equal(np.asarray(w.rows.reward[b])[present], expected[present])
        assert int(w.age[b]) == 5 - first[b]


def test_priorities_drive_sampling_and_weights():
    state = replay.init(_rows(1, 1), capacity=8)
    state = add(state, _rows(8, 1))
    # rows 0..6 can start windows; give row 3 priority 100 and the rest 1.
    state = update_priorities(state, jnp.arange(8), jnp.zeros(8, jnp.int32), jnp.ones(8))
    state = update_priorities(state, jnp.array([3]), jnp.array([0]), jnp.array([100.0]))
    w = sample(state, jax.random.key(1), 4000, window=2, alpha=1.0, beta=1.0)
    share = np.mean(np.asarray(w.start) == 3)
    # 3 sigma of a sampled share at p = 100/106, n = 4,000: 3 x sqrt(p (1 - p) / 4000) = 0.011
    np.testing.assert_allclose(share, 100 / 106, atol=0.011)
    # weight = (N P)^-beta / max: row 3 has the smallest weight, 1 / 100 of the others.
    weights = np.asarray(w.weight)
    np.testing.assert_allclose(weights[np.asarray(w.start) == 3], 0.01, rtol=1e-4)
    np.testing.assert_allclose(weights[np.asarray(w.start) != 3], 1.0, rtol=1e-4)
    assert float(state.max_priority) == 100.0


def test_new_rows_get_max_priority():
    state = replay.init(_rows(1, 1), capacity=8)
    state = add(state, _rows(2, 1))
    state = update_priorities(state, jnp.array([0]), jnp.array([0]), jnp.array([5.0]))
    state = add(state, _rows(1, 1, start=2))
    assert float(state.priority[2, 0]) == 5.0


def test_entry_priority_follows_the_current_maximum():
    state = replay.init(_rows(1, 1), capacity=8)
    state = add(state, _rows(4, 1))
    state = update_priorities(state, jnp.arange(4), jnp.zeros(4, jnp.int32),
                                     jnp.array([50.0, 2.0, 3.0, 1.0]))
    state = update_priorities(state, jnp.array([0]), jnp.array([0]), jnp.array([0.5]))
    assert float(state.max_priority) == 3.0  # the spike of 50 is gone from the buffer
    state = add(state, _rows(1, 1, start=4))
    assert float(state.priority[4, 0]) == 3.0


def test_beta_anneals_linearly_to_one():
    from dreamer import config as config_lib

    constant = config_lib.ReplayConfig(beta=0.4)
    assert replay.annealed_beta(constant, 10**6) == 0.4
    annealed = config_lib.ReplayConfig(beta=0.4, beta_anneal_updates=1000)
    got = [float(replay.annealed_beta(annealed, u)) for u in (0, 250, 500, 1000, 5000)]
    np.testing.assert_allclose(got, [0.4, 0.55, 0.7, 1.0, 1.0], rtol=1e-6)
    assert float(config_lib.preset("atari100k").replay.beta_anneal_updates) == 120_000


def test_a_draw_on_a_cell_that_cannot_start_a_window_is_replaced(monkeypatch):
    """`jax.random.choice` inverts a float32 cumulative sum that XLA does not compute monotonically,
    so once in millions of draws it returns a cell of probability 0: the newest row of a stream or an
    empty slot. Its importance weight 0^-beta is infinite and made every loss of a batch NaN. Forced
    here: every draw lands on the newest row, which the sampler must replace by a startable one."""
    state = replay.init(_rows(1, 1), capacity=8)
    state = add(state, _rows(6, 1))  # rows 0..5 in slots 0..5; 5 (newest) and slots 6, 7 cannot start
    state = update_priorities(state, jnp.array([2]), jnp.array([0]), jnp.array([9.0]))
    for bad in (5, 6, 7):
        monkeypatch.setattr(jax.random, "choice", lambda key, n, shape, p, bad=bad: jnp.full(
            shape, bad, jnp.int32))
        w = replay.sample(state, jax.random.key(0), 4, window=2, alpha=1.0, beta=1.0)
        np.testing.assert_array_equal(np.asarray(w.start), 2)  # the likeliest startable row
        assert np.isfinite(np.asarray(w.weight)).all() and np.asarray(w.present).all()


def test_without_replacement_draws_distinct_rows_with_successive_probabilities():
    """`replace=False`: a batch never holds one start row twice, and a row's chance of being in
    the batch is that of successive draws in proportion to priority among the rows not drawn
    yet (EfficientZero's `np.random.choice(replace=False, p=...)`)."""
    state = replay.init(_rows(1, 4), capacity=16)
    state = add(state, _rows(16, 4))  # rows 0..14 of 4 streams can start: 60 cells
    keys = jax.random.split(jax.random.key(3), 200)
    draw = jax.jit(jax.vmap(lambda k: sample(state, k, 32, window=2, alpha=1.0, beta=1.0,
                                             replace=False)))
    w = draw(keys)
    cells = np.asarray(w.start) * 4 + np.asarray(w.stream)  # [200, 32]
    assert all(len(set(row)) == 32 for row in cells)
    assert (np.asarray(w.start) <= 14).all() and np.isfinite(np.asarray(w.weight)).all()

    small = replay.init(_rows(1, 1), capacity=8)
    small = add(small, _rows(5, 1))  # rows 0..3 can start
    p = np.array([4.0, 2.0, 1.0, 1.0]) / 8
    small = update_priorities(small, jnp.arange(4), jnp.zeros(4, jnp.int32), jnp.asarray(p * 8))
    n = 4000
    pairs = np.asarray(jax.jit(jax.vmap(lambda k: sample(
        small, k, 2, window=2, alpha=1.0, beta=1.0, replace=False).start))(
        jax.random.split(jax.random.key(4), n)))
    assert (pairs[:, 0] != pairs[:, 1]).all()
    included = [np.mean((pairs == i).any(axis=1)) for i in range(4)]
    expected = [p[i] + sum(p[j] * p[i] / (1 - p[j]) for j in range(4) if j != i) for i in range(4)]
    # 3 sigma of a share at n = 4,000: at most 3 x sqrt(0.25 / 4000) = 0.024
    np.testing.assert_allclose(included, expected, atol=0.024)
    few = sample(small, jax.random.key(5), 6, window=2, alpha=1.0, beta=1.0, replace=False)
    starts = np.asarray(few.start)  # 4 startable rows for 6 draws: each once, then the likeliest
    assert sorted(starts[:4]) == [0, 1, 2, 3] and (starts[4:] == 0).all()
    assert np.isfinite(np.asarray(few.weight)).all()
