"""Targets on hand-made trajectories: episode masks, n-step values, value prefixes, horizons."""

import jax.numpy as jnp
import numpy as np

from dreamer import targets

GAMMA = 0.5


def _window(rewards, terminated=(), truncated=(), present=None):
    w = len(rewards)
    term = np.zeros((1, w), bool)
    trunc = np.zeros((1, w), bool)
    for i in terminated:
        term[0, i] = True
    for i in truncated:
        trunc[0, i] = True
    pres = np.ones((1, w), bool) if present is None else np.asarray(present, bool)[None]
    return jnp.asarray([rewards], jnp.float32), jnp.asarray(term), jnp.asarray(trunc), jnp.asarray(pres)


def test_nstep_without_episode_end():
    # K=1, n=2, W = 4 rows. z_0 = r0 + g r1 + g^2 v2 ; z_1 = r1 + g r2 + g^2 v3.
    r, te, tr, p = _window([1.0, 2.0, 3.0, 4.0])
    plan = targets.nstep_plan(r, te, tr, p, jnp.array([2]), 1, 2, GAMMA)
    np.testing.assert_allclose(plan.discounted_rewards, [[1 + 0.5 * 2, 2 + 0.5 * 3]])
    np.testing.assert_array_equal(plan.bootstrap_index, [[2, 3]])
    np.testing.assert_allclose(plan.bootstrap_discount, [[0.25, 0.25]])
    values = jnp.array([[10.0, 20.0]])  # v at the bootstrap rows
    np.testing.assert_allclose(targets.value_targets(plan, values), [[2 + 2.5, 3.5 + 5.0]])


def test_nstep_stops_at_terminal_without_bootstrap():
    # terminal after row 1's action: z_0 = r0 + g r1 (no bootstrap); row 2 is a new episode.
    r, te, tr, p = _window([1.0, 2.0, 7.0, 7.0, 7.0, 7.0], terminated=[1])
    plan = targets.nstep_plan(r, te, tr, p, jnp.array([3]), 2, 3, GAMMA)
    np.testing.assert_allclose(plan.discounted_rewards[0, :2], [2.0, 2.0])
    np.testing.assert_allclose(plan.bootstrap_discount[0, :2], [0.0, 0.0])
    masks = targets.episode_masks(te, tr, p, 2)
    np.testing.assert_array_equal(masks.alive, [[True, True, False]])
    np.testing.assert_array_equal(masks.absorbing, [[False, False, True]])
    np.testing.assert_array_equal(plan.valid, [[True, True, False]])
    z = targets.value_targets(plan, jnp.full((1, 3), 100.0))
    np.testing.assert_allclose(z, [[2.0, 2.0, 0.0]])


def test_nstep_truncation_bootstraps_from_last_observed_row():
    # truncated after row 1's action: z_0 = r0 + g r1 + g^2 v(row 1).
    r, te, tr, p = _window([1.0, 2.0, 7.0, 7.0, 7.0], truncated=[1])
    plan = targets.nstep_plan(r, te, tr, p, jnp.array([3]), 1, 3, GAMMA)
    np.testing.assert_array_equal(plan.bootstrap_index[0, 0], 1)
    np.testing.assert_allclose(plan.bootstrap_discount[0, 0], 0.25)
    masks = targets.episode_masks(te, tr, p, 1)
    assert not masks.absorbing.any()  # past a truncation targets are unknown, not zero


def test_time_limit_as_terminal_ends_the_return_at_the_cut():
    # truncated after row 1's action, the cut counted as failure: z_0 = r0 + g r1, no bootstrap,
    # and row 2 (the next episode) is absorbing for row 0's unroll.
    r, te, tr, p = _window([1.0, 2.0, 7.0, 7.0, 7.0], truncated=[1])
    te, tr = targets.episode_ends(te, tr, "terminal")
    plan = targets.nstep_plan(r, te, tr, p, jnp.array([3]), 2, 3, GAMMA)
    np.testing.assert_allclose(targets.value_targets(plan, jnp.full((1, 3), 100.0)),
                               [[2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(targets.episode_masks(te, tr, p, 2).absorbing,
                                  [[False, False, True]])
    kept = targets.episode_ends(*_window([1.0, 2.0], truncated=[1])[1:3], "bootstrap")
    np.testing.assert_array_equal(kept[1], [[False, True]])


def test_nstep_shortens_at_newest_row():
    # only rows 0..2 exist: from row 0 with n=3, count r0, r1 and bootstrap from row 2.
    r, te, tr, p = _window([1.0, 1.0, 1.0, 0.0, 0.0], present=[1, 1, 1, 0, 0])
    plan = targets.nstep_plan(r, te, tr, p, jnp.array([3]), 1, 3, GAMMA)
    np.testing.assert_allclose(plan.discounted_rewards[0], [1.5, 1.0])
    np.testing.assert_array_equal(plan.bootstrap_index[0], [2, 2])
    np.testing.assert_allclose(plan.bootstrap_discount[0], [0.25, 0.5])


def test_horizon_limits_steps():
    r, te, tr, p = _window([1.0, 1.0, 1.0, 1.0, 1.0])
    plan = targets.nstep_plan(r, te, tr, p, jnp.array([1]), 1, 3, GAMMA)
    np.testing.assert_allclose(plan.discounted_rewards[0], [1.0, 1.0])
    np.testing.assert_array_equal(plan.bootstrap_index[0], [1, 2])


def test_value_prefix_resets_every_horizon():
    reward = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0, 0.0]])
    alive = jnp.ones((1, 6), bool)
    np.testing.assert_allclose(
        targets.value_prefix_targets(reward, alive, 5, 2), [[1, 3, 3, 7, 5]]
    )
    np.testing.assert_allclose(
        targets.value_prefix_targets(reward, alive, 5, 5), [[1, 3, 6, 10, 15]]
    )
    dead = jnp.array([[True, True, False, False, False, False]])
    np.testing.assert_allclose(targets.value_prefix_targets(reward, dead, 5, 5), [[1, 3, 3, 3, 3]])


def test_off_policy_horizon():
    ages = jnp.array([0, 99, 100, 250, 10_000])
    np.testing.assert_array_equal(targets.off_policy_horizon(ages, 5, 100.0), [5, 5, 4, 3, 1])
