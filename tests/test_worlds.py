"""JAX-native worlds and the registry: batched steps, compile-once, registry errors and what it
records (kind, training options, num_envs), CartPole vs gymnasium."""

import chex
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from worlds.cartpole import cartpole_dynamics, cartpole_terminated

# The smoke rollout of every registered world (shapes, dtypes, reward range, masks, auto-reset)
# is the shared check: tests/world_check.py, run on each by tests/test_every_world.py.


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


def test_tmaze_hand_played():
    """The cue shows at the start only; forward is the one legal action along the corridor, up
    and down the legal ones at the junction, where the cue's arm pays +1 and the other 0, ending
    the episode; the junction looks the same whatever the cue."""
    world = worlds.make("tmaze", length=3)
    seen_at_junction, cues = set(), set()
    for seed, follow in ((0, True), (1, True), (2, False), (5, False)):
        state, ts = world.reset(jax.random.key(seed))
        cue = int(state.game.cue)
        cues.add(cue)
        start = np.asarray(ts.observation)
        assert start[:4].tolist() == [1, 0, 0, 0] and start[4 + cue] == 1 and start[5 - cue] == 0
        for _ in range(3):
            assert np.asarray(ts.action_mask).tolist() == [True, False, False]
            state, ts = world.step(state, jnp.int32(0), jax.random.key(0))
            assert float(ts.reward) == 0 and not bool(ts.done)
            assert np.asarray(ts.observation)[4:].tolist() == [0, 0]  # the cue is gone
        assert np.asarray(ts.action_mask).tolist() == [False, True, True]
        seen_at_junction.add(tuple(np.asarray(ts.observation).tolist()))
        arm = 1 + cue if follow else 2 - cue
        state, ts = world.step(state, jnp.int32(arm), jax.random.key(0))
        assert float(ts.reward) == (1.0 if follow else 0.0) and bool(ts.terminated)
    assert cues == {0, 1} and len(seen_at_junction) == 1
    with pytest.raises(worlds.WorldOptionError, match="tmaze needs length >= 1"):
        worlds.make("tmaze", length=0)


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


def test_registry_records_kind_without_building():
    """Host worlds are built with a number of copies, JAX worlds are not; the registry records
    which, so the trainer starts no JVM just to ask."""
    assert {worlds.kind(n) for n in ("catch", "cartpole", "minatar/breakout", "text/coin")} == {
        "jax"}
    assert {worlds.kind(n) for n in ("atari/pong", "gym:CartPole-v1", "twx/coin",
                                     "textworld/cooking")} == {"host"}
    with pytest.raises(worlds.UnknownWorldError, match="cartpole"):
        worlds.kind("cartpol")


def test_num_envs_means_the_same_for_every_world():
    """`num_envs` copies: a host world holds them, a JAX world is the one copy its user vmaps."""
    world = worlds.make("catch", num_envs=8)
    assert world.is_jax and world.spec == worlds.make("catch").spec
    with worlds.make("gym:CartPole-v1", num_envs=3) as host:
        assert host.num_envs == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(worlds.WorldOptionError, match=r"^catch: num_envs must be >= 1, got "):
            worlds.make("catch", num_envs=bad)


def test_training_options_are_recorded_per_family_and_only_training_copies_get_them():
    assert worlds.training_options("atari/pong") == {"terminal_on_life_loss": True,
                                                     "reward_clip": True}
    assert worlds.training_options("catch") == {} == worlds.training_options("gym:CartPole-v1")
    world = worlds.make("catch", training=True)  # a world without any builds as usual
    assert world.spec == worlds.make("catch").spec
    with pytest.raises(ValueError, match="training_options are for host worlds"):
        worlds.register("test/jax-trained", "worlds.catch:Catch", training_options={"rows": 4})
    assert "test/jax-trained" not in worlds.names()


def test_eval_options_are_recorded_per_family_and_only_evaluation_copies_get_them(monkeypatch):
    """TextWorldExpress evaluates on its held-out test fold, read from the registry without
    building a world (no JVM); `make(evaluation=True)` puts a family's evaluation options over the
    user's, and training copies never get them."""
    from worlds import registry

    assert worlds.eval_options("twx/coin") == {"fold": "test"}
    assert worlds.eval_options("catch") == {} == worlds.eval_options("atari/pong")
    with pytest.raises(ValueError, match="eval_options are for host worlds"):
        worlds.register("test/jax-evaluated", "worlds.catch:Catch", eval_options={"rows": 4})
    monkeypatch.setattr(registry, "_PREFIXES", dict(registry._PREFIXES))
    worlds.register_prefix("test-gym:", "worlds.gym:make_gym",
                           eval_options={"max_episode_steps": 3})
    with worlds.make("test-gym:CartPole-v1", evaluation=True, max_episode_steps=50) as world:
        world.reset(0)
        ends = [bool(world.step([0]).truncated[0]) for _ in range(3)]
    assert ends == [False, False, True]  # cut at 3 steps: the evaluation option won
    with worlds.make("test-gym:CartPole-v1", max_episode_steps=50) as world:
        world.reset(0)
        assert not any(world.step([0]).truncated[0] for _ in range(3))
    with pytest.raises(ValueError, match="for training or for evaluation, not both"):
        worlds.make("test-gym:CartPole-v1", training=True, evaluation=True)


def test_bind_failure_other_than_an_unknown_name_is_one_line():
    def factory(rows, *, columns=3):  # a required option
        return worlds.make("catch", rows=rows, columns=columns)

    from worlds.errors import check_options
    with pytest.raises(worlds.WorldOptionError, match=r"^world 'x': missing a required argument: "
                                                      r"'rows'; it takes the options columns$"):
        check_options("x", factory, {})
    check_options("x", factory, {"rows": 3})


def test_a_world_registered_as_the_wrong_kind_is_refused(monkeypatch):
    from host_worlds import WrappedCartPole

    from worlds import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    worlds.register("test/host", WrappedCartPole)  # kind defaults to "jax"
    with pytest.raises(TypeError, match="register it with kind='host'"):
        worlds.make("test/host", num_envs=2)
    worlds.register("test/host-ok", WrappedCartPole, kind="host")
    with worlds.make("test/host-ok", num_envs=2) as world:
        assert world.num_envs == 2 and worlds.kind("test/host-ok") == "host"
