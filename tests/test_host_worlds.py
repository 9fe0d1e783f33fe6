"""Host worlds: the gymnasium adapter and ALE Atari 100k worlds against the `HostWorld` contract."""

import numpy as np
import pytest
from world_check import check_timestep, check_world

import worlds
from worlds.atari import ATARI_100K_GAMES, make_atari
from worlds.gym import UnsupportedWorldError, make_gym


def _check_timestep(ts, world):
    check_timestep(ts, world.spec, world.num_envs)


# --- gymnasium ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id, obs_shape, num_actions, max_steps",
    [("CartPole-v1", (4,), 2, 500), ("Acrobot-v1", (6,), 3, 500)],
)
def test_gym_shapes_and_spec(env_id, obs_shape, num_actions, max_steps):
    with make_gym(env_id, num_envs=3) as world:
        spec = world.spec
        assert spec.name == f"gym:{env_id}"
        assert spec.observation_shape == obs_shape
        assert spec.observation_dtype == "float32"
        assert spec.observation_kind == "vector"
        assert spec.num_actions == num_actions
        assert spec.max_episode_steps == max_steps
        check_world(world, steps=5)
        assert world.frames == 15


def test_gym_cartpole_autoreset_matches_reference_env():
    """The step that ends an episode returns what a plain gymnasium env's next `reset()` gives."""
    import gymnasium

    seed, n = 3, 2
    reference = [gymnasium.make("CartPole-v1") for _ in range(n)]
    expected = [env.reset(seed=seed + i)[0] for i, env in enumerate(reference)]
    with make_gym("CartPole-v1", num_envs=n) as world:
        ts = world.reset(seed=seed)
        np.testing.assert_array_equal(ts.observation, np.stack(expected))
        ended = 0
        for _ in range(200):  # always pushing right topples the pole within ~10 steps
            actions = np.ones(n, np.int64)
            ts = world.step(actions)
            assert (ts.reward == 1.0).all()
            for i, env in enumerate(reference):
                obs, reward, terminated, truncated, _ = env.step(int(actions[i]))
                assert ts.terminated[i] == terminated and ts.reward[i] == reward
                if terminated or truncated:
                    obs, _ = env.reset()
                    ended += 1
                np.testing.assert_array_equal(ts.observation[i], obs)
        assert ended >= 2 * n


def test_gym_saved_state_continues_the_same_episodes():
    """A world built fresh and given another's `get_state` steps exactly as the original does:
    episodes in progress, auto-resets (the envs' RNGs) and `frames`."""
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, (120, 3))
    with make_gym("CartPole-v1", num_envs=3) as world, make_gym("CartPole-v1", num_envs=3) as copy:
        world.reset(seed=5)
        for a in actions[:30]:
            world.step(a)
        state = world.get_state()
        assert state is not None
        copy.reset(seed=99)
        copy.set_state(state)
        assert copy.frames == world.frames == 90
        ends = 0
        for a in actions[30:]:
            ours, theirs = world.step(a), copy.step(a)
            for field in ("observation", "reward", "terminated", "truncated"):
                np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field))
            ends += int(ours.terminated.sum())
        # 10 episodes end in the 90 steps after the save: the copies auto-reset from the saved RNGs
        assert ends == 10
        assert copy.frames == world.frames
        with make_gym("CartPole-v1", num_envs=2) as other, pytest.raises(ValueError, match="3 copies"):
            other.set_state(state)


def test_gym_truncation_flag():
    with make_gym("CartPole-v1", num_envs=1, max_episode_steps=5) as world:
        assert world.spec.max_episode_steps == 5
        world.reset(seed=0)
        flags = [world.step(np.array([t % 2])).truncated[0] for t in range(5)]
        assert flags == [False] * 4 + [True]


def test_gym_refuses_box_actions():
    with pytest.raises(
        UnsupportedWorldError, match="discrete action set; gym:Pendulum-v1 has a Box"
    ):
        make_gym("Pendulum-v1")
    assert issubclass(UnsupportedWorldError, ValueError)


def test_gym_unknown_id():
    with pytest.raises(worlds.UnknownWorldError, match="'CartPolee-v1'.*gym:CartPole-v1"):
        worlds.make("gym:CartPolee-v1")


def test_gym_through_registry():
    world = worlds.make("gym:CartPole-v1")
    assert world.num_envs == 1 and world.spec.num_actions == 2
    _check_timestep(world.reset(seed=0), world)
    world.close()


# --- Atari (ALE) ----------------------------------------------------------------------------


def test_atari_100k_games_exist():
    from ale_py import roms

    assert len(ATARI_100K_GAMES) == 26
    assert set(ATARI_100K_GAMES) <= set(roms.get_all_rom_ids())
    assert "atari/pong" in worlds.names()


@pytest.mark.parametrize("screen_size", [96, 84])
def test_atari_observation_shape(screen_size):
    options = {} if screen_size == 96 else {"screen_size": screen_size}
    with worlds.make("atari/pong", num_envs=2, **options) as world:
        spec = world.spec
        assert spec.observation_shape == (screen_size, screen_size, 4)
        assert spec.observation_kind == "image" and spec.frames_per_step == 4
        assert spec.num_actions == 6 and spec.action_names[:2] == ("NOOP", "FIRE")
        assert spec.max_episode_steps == 27_000
        ts = world.reset(seed=0)
        _check_timestep(ts, world)
        _check_timestep(world.step(np.zeros(2, np.int64)), world)


def test_atari_frame_counting():
    with make_atari("pong", num_envs=2) as world:
        world.reset(seed=0)
        noop_frames = world.frames
        assert 0 <= noop_frames <= 2 * 30
        for _ in range(10):
            world.step(np.zeros(2, np.int64))
        assert world.frames == noop_frames + 10 * 2 * 4
        # An explicit reset keeps the frames already consumed.
        before = world.frames
        world.reset(seed=1)
        assert world.frames >= before


def test_atari_reward_clip():
    # Alien scores 10 per pellet, so raw rewards exceed 1 within the first few dozen steps.
    def rewards(clip):
        with make_atari("alien", num_envs=1, reward_clip=clip) as world:
            world.reset(seed=0)
            rng = np.random.default_rng(0)
            return np.array(
                [
                    world.step(rng.integers(0, world.spec.num_actions, 1)).reward[0]
                    for _ in range(100)
                ]
            )

    raw, clipped = rewards(False), rewards(True)
    assert np.abs(raw).max() > 1.0
    np.testing.assert_array_equal(clipped, np.sign(raw))


def test_atari_truncation_and_autoreset():
    with make_atari("pong", num_envs=2, max_episode_steps=50) as world:
        first = world.reset(seed=0)
        ts = first
        for t in range(1, 51):
            last, ts = ts, world.step(np.zeros(2, np.int64))
            if t < 50:
                assert not ts.done.any()
        assert ts.truncated.all() and not ts.terminated.any()
        # The truncating step returns the next episode's first observation: Pong's opening screen
        # (the same after any number of no-ops), not the 49-steps-in screen that preceded it.
        assert not (last.observation == first.observation).all()
        np.testing.assert_array_equal(ts.observation, first.observation)
        assert not world.step(np.zeros(2, np.int64)).done.any()


def test_atari_unknown_game_suggests():
    with pytest.raises(worlds.UnknownWorldError, match="atari/pong"):
        worlds.make("atari/pongg")


def test_atari_through_registry():
    world = worlds.make("atari/pong")
    assert world.num_envs == 1 and world.spec.name == "atari/pong"
    _check_timestep(world.reset(seed=0), world)
    world.close()


def test_atari_settings_are_the_100k_protocol_read_without_a_world():
    """`worlds.settings` fills in `make_atari`'s declared options (AtariWorld's signature): the
    evaluation copies play whole games with raw scores, 30 no-op starts, no sticky actions and a
    27k-step cap; the training copies add life loss and clipping, and a user's option wins."""
    protocol = {"frame_skip": 4, "max_pool": True, "grayscale": True, "screen_size": 96,
                "stack_num": 4, "noop_max": 30, "repeat_action_probability": 0.0,
                "max_episode_steps": 27_000, "fire_reset": False, "num_threads": 0, "history": 1}
    assert worlds.settings("atari/pong", evaluation=True) == {
        **protocol, "terminal_on_life_loss": False, "reward_clip": False}
    assert worlds.settings("atari/pong", training=True, reward_clip=False, history=2) == {
        **protocol, "terminal_on_life_loss": True, "reward_clip": False, "history": 2}
    with pytest.raises(worlds.WorldOptionError, match="noop_maxx.*noop_max"):
        worlds.settings("atari/pong", noop_maxx=3)


# --- gymnasium: spaces dreamer cannot use, and action sets that do not start at 0 -----------


def _env_class(observation_space, action_space):
    """A tiny gymnasium env with the given spaces; its reward is the action it received."""
    import gymnasium

    class Env(gymnasium.Env):
        def __init__(self):
            self.observation_space, self.action_space = observation_space, action_space

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), float(action), False, False, {}

    return Env


def _register(env_id, observation_space, action_space):
    import gymnasium

    gymnasium.register(env_id, entry_point=_env_class(observation_space, action_space))
    return env_id


@pytest.mark.parametrize(
    "space, message",
    [
        ("dict", "needs array observations \\(a Box space\\); gym:{id} has a Dict observation"),
        ("text", "needs array observations \\(a Box space\\); gym:{id} has a Text observation"),
        ("tuple", "needs array observations \\(a Box space\\); gym:{id} has a Tuple observation"),
        ("rank2", "vector \\(rank 1\\) or image \\(rank 3, H x W x C\\) observations; gym:{id} "
                  "has observations of shape \\(2, 3\\)"),
    ],
)
def test_gym_refuses_observation_spaces_it_cannot_use(space, message):
    from gymnasium import spaces

    box = spaces.Box(0.0, 1.0, (2,), np.float32)
    observation_space = {
        "dict": spaces.Dict({"position": box}),
        "text": spaces.Text(8),
        "tuple": spaces.Tuple((box, box)),
        "rank2": spaces.Box(0.0, 1.0, (2, 3), np.float32),
    }[space]
    env_id = _register(f"DreamerTest/{space}-obs-v0", observation_space, spaces.Discrete(2))
    with pytest.raises(UnsupportedWorldError, match=message.format(id=env_id)):
        make_gym(env_id)
    with pytest.raises(UnsupportedWorldError, match=message.format(id=env_id)):
        worlds.make(f"gym:{env_id}", num_envs=2)  # the registry path a user's --world takes


def test_gym_discrete_action_space_with_a_nonzero_start():
    """A `Discrete(n, start=s)` env takes the actions s..s+n-1: dreamer's actions 0..n-1 reach it
    shifted by s (the env here rewards the action it received)."""
    from gymnasium import spaces

    env_id = _register("DreamerTest/start-minus-2-v0", spaces.Box(0.0, 1.0, (2,), np.float32),
                       spaces.Discrete(4, start=-2))
    with make_gym(env_id, num_envs=4) as world:
        assert world.spec.num_actions == 4
        world.reset(seed=0)
        ts = world.step(np.array([0, 1, 2, 3]))
        np.testing.assert_array_equal(ts.reward, [-2.0, -1.0, 0.0, 1.0])
        ts = world.step(np.array([3, 3, 0, 1]))
        np.testing.assert_array_equal(ts.reward, [1.0, 1.0, -2.0, -1.0])
    env_id = _register("DreamerTest/start-plus-5-v0", spaces.Box(0.0, 1.0, (2,), np.float32),
                       spaces.Discrete(2, start=5))
    with make_gym(env_id, num_envs=2) as world:
        world.reset(seed=0)
        np.testing.assert_array_equal(world.step(np.array([1, 0])).reward, [6.0, 5.0])


# --- Atari: training copies and evaluation copies -------------------------------------------


def test_atari_training_copies_lose_lives_and_clip_evaluation_copies_do_not(tmp_path,
                                                                             monkeypatch):
    """The Trainer collects from copies where a lost life ends the episode and rewards are
    sign-clipped (`make_training_world`), and evaluates (`Trainer.evaluate`) on copies built with
    neither. The two step alike on the same seed and actions: Ms. Pac-Man under random play scores
    10+ points within 64 steps and loses its first life at step 114 (seed 0), and its game
    lasts past the 150 steps played here."""
    from dreamer import config as config_lib
    from dreamer import train as train_lib

    cfg = config_lib.override(config_lib.tiny(), ["world=atari/ms_pacman", "run.num_envs=2",
                                                   "run.eval_episodes=2"])
    trainer = train_lib.Trainer(cfg, str(tmp_path))
    train_world = trainer.world
    assert train_world.reward_clip and train_world.spec.reward_range == (-1.0, 1.0)
    seen = {}

    def play_both(eval_world, *args, **kwargs):
        """Stands in for the evaluation's episodes: steps the evaluation copies the trainer built
        next to its training copies, with the same seed and actions."""
        seen["reward_clip"] = eval_world.reward_clip
        seen["reward_range"] = eval_world.spec.reward_range
        seen["num_envs"] = eval_world.num_envs
        rng = np.random.default_rng(0)
        train_world.reset(seed=0)
        eval_world.reset(seed=0)
        steps = [(train_world.step(a), eval_world.step(a))
                 for a in rng.integers(0, eval_world.spec.num_actions, (150, 2))]
        seen["train"], seen["eval"] = zip(*steps, strict=True)
        return np.zeros(eval_world.num_envs)

    monkeypatch.setattr(train_lib.actor, "host_evaluate", play_both)
    try:
        trainer.evaluate()
    finally:
        train_world.close()
        trainer.checkpointer.close()
    assert seen["num_envs"] == 2
    assert not seen["reward_clip"] and seen["reward_range"] == (-np.inf, np.inf)
    train_steps, eval_steps = seen["train"], seen["eval"]
    for ours, theirs in zip(train_steps, eval_steps, strict=True):
        np.testing.assert_array_equal(ours.observation, theirs.observation)  # the same game
        np.testing.assert_array_equal(ours.reward, np.sign(theirs.reward))
    raw = np.stack([ts.reward for ts in eval_steps])
    assert raw.max() >= 10.0  # points the training copies saw as 1
    train_ends = np.stack([ts.terminated for ts in train_steps])
    eval_ends = np.stack([ts.terminated | ts.truncated for ts in eval_steps])
    assert train_ends.sum() >= 1 and not eval_ends.any()  # a life lost; the game goes on
