"""JAX-native worlds: smoke episodes, compile-once, registry errors, CartPole vs gymnasium."""

import chex
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from worlds.cartpole import cartpole_dynamics, cartpole_terminated


@pytest.mark.parametrize("name", ["catch", "cartpole"])
def test_smoke_episode_under_scan(name):
    world = worlds.make(name)
    spec = world.spec
    batch, steps = 8, 3 * spec.max_episode_steps if name == "catch" else 600

    @jax.jit
    def rollout(key):
        keys = jax.random.split(key, batch)
        state, ts = jax.vmap(world.reset)(keys)

        def body(carry, key):
            state, ts = carry
            a_key, s_key = jax.random.split(key)
            action = jax.random.randint(a_key, (batch,), 0, spec.num_actions)
            state, ts = jax.vmap(world.step)(state, action, jax.random.split(s_key, batch))
            return (state, ts), (ts, state.step_count)

        _, out = jax.lax.scan(body, (state, ts), jax.random.split(key, steps))
        return out

    ts, step_count = rollout(jax.random.key(0))
    assert ts.observation.shape == (steps, batch, *spec.observation_shape)
    assert ts.observation.dtype == np.dtype(spec.observation_dtype)
    assert ts.reward.dtype == jnp.float32 and ts.terminated.dtype == bool
    assert ts.action_mask.shape == (steps, batch, spec.num_actions)
    assert np.all(np.isfinite(ts.observation)) and np.all(np.isfinite(ts.reward))
    assert np.all(ts.reward >= spec.reward_range[0]) and np.all(ts.reward <= spec.reward_range[1])
    done = np.asarray(ts.terminated | ts.truncated)
    assert done.any()
    # auto-reset: the step count is 0 exactly where an episode ended
    np.testing.assert_array_equal(np.asarray(step_count) == 0, done)
    assert np.all(np.asarray(step_count) <= spec.max_episode_steps)


@pytest.mark.parametrize("name", ["catch", "minatar/asterix", "text/coin", "text/quest"])
def test_step_batch_equals_vmapped_step(name):
    """`step_batch` resets only the copies that ended, in blocks, or every copy when many ended;
    either way each copy's states and time steps equal `vmap(step)`'s, bit for bit."""
    world = worlds.make(name)
    batch, steps = 70, min(2 * world.spec.max_episode_steps + 3, 300)  # blocks of 2; all: > 17

    @jax.jit
    def rollouts(key):
        state, ts = jax.vmap(world.reset)(jax.random.split(key, batch))

        def body(carry, key):
            ours, theirs = carry
            a_key, s_key = jax.random.split(key)
            action = jax.random.randint(a_key, (batch,), 0, world.spec.num_actions)
            keys = jax.random.split(s_key, batch)
            ours, ours_ts = world.step_batch(ours, action, keys)
            theirs, theirs_ts = jax.vmap(world.step)(theirs, action, keys)
            return (ours, theirs), (ours, ours_ts, theirs, theirs_ts)

        return jax.lax.scan(body, (state, state), jax.random.split(key, steps))[1]

    ours, ours_ts, theirs, theirs_ts = rollouts(jax.random.key(3))
    chex.assert_trees_all_equal((ours, ours_ts), (theirs, theirs_ts))
    ended = np.asarray(ours_ts.done).sum(-1)
    if name == "catch":  # every episode lasts the same: all copies end together
        assert (ended == batch).any()
    else:  # a few copies end at a time: the block path
        assert ((ended > 0) & (4 * ended <= batch)).sum() >= 3


@pytest.mark.parametrize("name", ["catch", "cartpole"])
def test_step_compiles_once(name):
    chex.clear_trace_counter()
    world = worlds.make(name)
    step = jax.jit(chex.assert_max_traces(world.step, n=1))
    state, ts = world.reset(jax.random.key(0))
    for i in range(5):
        state, ts = step(state, jnp.int32(i % world.spec.num_actions), jax.random.key(i))


def test_cartpole_matches_gymnasium_step_for_step():
    """From the same state, one step of ours equals one step of gymnasium's CartPole-v1 (both
    Euler), and termination agrees, along gymnasium trajectories with random actions."""
    env = gymnasium.make("CartPole-v1").unwrapped
    rng = np.random.default_rng(0)
    step = jax.jit(cartpole_dynamics)
    compared = terminations = 0
    for episode in range(20):
        obs, _ = env.reset(seed=episode)
        for _ in range(500):
            action = int(rng.integers(2))
            before = np.array(env.state, dtype=np.float64)
            obs, reward, terminated, truncated, _ = env.step(action)
            ours = np.asarray(step(jnp.asarray(before, jnp.float32), action))
            np.testing.assert_allclose(ours, obs, rtol=1e-5, atol=1e-5)
            assert bool(cartpole_terminated(jnp.asarray(np.asarray(env.state, np.float32)))) == terminated
            assert reward == 1.0
            compared += 1
            terminations += terminated
            if terminated:
                break
    assert compared > 300 and terminations == 20


def test_cartpole_time_limit_is_500():
    world = worlds.make("cartpole")
    assert world.spec.max_episode_steps == 500
    state, _ = world.reset(jax.random.key(0))
    # hold the pole up by replacing the game state each step: truncation fires at step 500
    step = jax.jit(world.step)
    for t in range(500):
        state = state.replace(game=jnp.zeros(4))
        state, ts = step(state, jnp.int32(t % 2), jax.random.key(t))
    assert bool(ts.truncated) and not bool(ts.terminated)


def test_catch_rewards_hand_played():
    world = worlds.make("catch")
    state, ts = world.reset(jax.random.key(3))
    ball_col = int(state.game.ball_col)
    total = 0.0
    for _ in range(world.spec.max_episode_steps):
        paddle = int(state.game.paddle_col)
        action = 1 + int(np.sign(ball_col - paddle))
        state, ts = world.step(state, jnp.int32(action), jax.random.key(0))
        total += float(ts.reward)
    assert total == 1.0 and bool(ts.terminated)


def test_unknown_world_suggests_close_names():
    with pytest.raises(worlds.UnknownWorldError, match="minatar/breakout"):
        worlds.make("minatar/brekout")
    with pytest.raises(worlds.UnknownWorldError, match="cartpole"):
        worlds.make("cartpol")


def test_bad_world_option_is_named():
    with pytest.raises(worlds.WorldOptionError, match="colour"):
        worlds.make("catch", colour=3)


def test_names_lists_every_family():
    names = worlds.names()
    for expected in ["catch", "cartpole", "minatar/breakout", "minatar/seaquest", "atari/pong"]:
        assert expected in names


def test_world_options_are_checked_by_signature_before_building():
    """The registry refuses an option by the factory's signature (no TypeError text matched),
    names it, and lists the options the world takes; a family factory with **options (Atari)
    checks against its world class."""
    with pytest.raises(worlds.WorldOptionError,
                       match=r"^world 'catch' does not take the option colour; it takes the "
                             r"options rows, columns$"):
        worlds.make("catch", colour=3)
    with pytest.raises(worlds.WorldOptionError, match="the options bogus, colour;"):
        worlds.make("catch", colour=3, bogus=1)
    with pytest.raises(worlds.WorldOptionError,
                       match=r"'atari/pong' does not take the option bogus; it takes the options "
                             r"frame_skip, .*reward_clip"):
        worlds.make("atari/pong", bogus=1)


def test_takes_copies_reads_the_signature_without_building():
    """Host worlds are built with a number of copies, JAX worlds are not; the registry knows
    which from the factory's signature, so the trainer starts no JVM just to ask."""
    assert not any(worlds.takes_copies(n) for n in ("catch", "cartpole", "minatar/breakout",
                                                     "text/coin"))
    assert all(worlds.takes_copies(n) for n in ("atari/pong", "gym:CartPole-v1", "twx/coin",
                                                 "textworld/cooking"))
    with pytest.raises(worlds.UnknownWorldError, match="cartpole"):
        worlds.takes_copies("cartpol")
