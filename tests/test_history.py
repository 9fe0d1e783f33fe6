"""The registry's `history=k` option (worlds/history.py): the last k observations stacked along
their last axis, for JAX and host worlds alike, reset and auto-reset to the first observation
repeated; k = 1 is the world unchanged."""

import json
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from extras import require, require_program
from resume_check import assert_resume_is_bit_identical

import worlds
from worlds.catch import Catch
from worlds.history import HistoryWorld, HostHistoryWorld, fill, push, renew
from worlds.padded import IncompatibleWorldsError, pad_worlds


def test_the_array_functions_by_hand():
    first = np.array([1, 2])
    np.testing.assert_array_equal(fill(first, 3), [1, 2, 1, 2, 1, 2])
    np.testing.assert_array_equal(push(np.array([1, 2, 3, 4, 5, 6]), np.array([7, 8])),
                                  [3, 4, 5, 6, 7, 8])
    stacks = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    new = np.array([[9, 9], [0, 1]])
    # copy 0 goes on (shifted); copy 1's episode ended: its next episode's first observation twice
    np.testing.assert_array_equal(renew(stacks, new, np.array([False, True])),
                                  [[3, 4, 9, 9], [0, 1, 0, 1]])
    image = np.arange(4).reshape(1, 2, 2)  # [H, W, C]: frames stack on the channel axis
    assert fill(image, 3).shape == (1, 2, 6)
    np.testing.assert_array_equal(fill(image, 3)[..., 4:], image)


def _board(ball_row, ball_col, paddle, rows=4, columns=3):
    board = np.zeros((rows, columns, 1), np.float32)
    board[ball_row, ball_col, 0] = 1
    board[rows - 1, paddle, 0] = 1
    return board


def test_catch_stack_after_reset_step_and_auto_reset():
    """catch 4x3 with history=3: the stacks of one whole episode and of the next one's start,
    written out by hand (the ball's columns are the ones the keys draw)."""
    world = worlds.make("catch", rows=4, columns=3, history=3)
    plain = worlds.make("catch", rows=4, columns=3)
    assert isinstance(world, HistoryWorld) and world.spec.observation_shape == (4, 3, 3)
    step, plain_step = jax.jit(world.step), jax.jit(plain.step)
    state, ts = world.reset(jax.random.key(0))
    plain_state, plain_ts = plain.reset(jax.random.key(0))
    col = int(np.argmax(np.asarray(ts.observation)[0, :, -1]))
    b = [_board(row, col, paddle) for row, paddle in [(0, 1), (1, 2), (2, 2), (3, 1)]]
    np.testing.assert_array_equal(ts.observation, np.concatenate([b[0]] * 3, -1))
    expected = [np.concatenate(s, -1) for s in ([b[0], b[0], b[1]], [b[0], b[1], b[2]])]
    for t, action in enumerate([2, 1, 0]):  # right, stay, left
        key = jax.random.key(t + 1)
        state, ts = step(state, action, key)
        plain_state, plain_ts = plain_step(plain_state, action, key)
        np.testing.assert_array_equal(ts.observation[..., -1:], plain_ts.observation)
        for field in ("reward", "terminated", "truncated", "action_mask"):
            np.testing.assert_array_equal(getattr(ts, field), getattr(plain_ts, field))
        if t < 2:
            np.testing.assert_array_equal(ts.observation, expected[t])
            assert not ts.done
    # the ball reached the bottom: the episode's reward, and the next episode's first stack
    assert bool(ts.terminated) and float(ts.reward) == (1.0 if col == 1 else -1.0)
    assert int(state.step_count) == 0
    col = int(np.argmax(np.asarray(ts.observation)[0, :, -1]))
    np.testing.assert_array_equal(ts.observation, np.concatenate([_board(0, col, 1)] * 3, -1))
    state, ts = step(state, 0, jax.random.key(9))
    np.testing.assert_array_equal(
        ts.observation, np.concatenate([_board(0, col, 1)] * 2 + [_board(1, col, 0)], -1))


def test_history_one_is_the_world_itself():
    world = worlds.make("catch", history=1)
    assert type(world) is Catch and world.spec == worlds.make("catch").spec
    host = worlds.make("gym:CartPole-v1", history=1)
    try:
        assert not isinstance(host, HostHistoryWorld)
    finally:
        host.close()


@pytest.mark.parametrize("name, shape", [("catch", (10, 5, 4)), ("cartpole", (16,)),
                                         ("minatar/breakout", (10, 10, 16))])
def test_spec_reports_the_stacked_shape(name, shape):
    """The stacked spec differs from the world's in its shape and its `history` (4) only."""
    plain, world = worlds.make(name), worlds.make(name, history=4)
    assert world.spec.observation_shape == shape
    assert (plain.spec.history, world.spec.history) == (1, 4)
    rest = lambda spec: {**vars(spec), "observation_shape": None, "history": None}  # noqa: E731
    assert rest(world.spec) == rest(plain.spec)
    _, ts = jax.jit(world.reset)(jax.random.key(0))
    assert ts.observation.shape == shape


def test_token_stack_shape_and_render():
    """Token sequences join end to end, each with its own padding; `render` shows the newest."""
    plain, world = worlds.make("text/coin"), worlds.make("text/coin", history=3)
    length = plain.spec.observation_shape[0]
    assert world.spec.observation_shape == (3 * length,)
    assert world.vocabulary == plain.vocabulary and world.commands == plain.commands
    _, ts = world.reset(jax.random.key(0))
    _, plain_ts = plain.reset(jax.random.key(0))
    assert world.render(ts.observation) == plain.render(plain_ts.observation)
    assert not hasattr(worlds.make("catch", history=2), "render")  # catch has none


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4", None])
def test_a_bad_history_is_one_line_naming_the_fix(bad):
    for name in ("catch", "twx/coin"):  # refused before building: no JVM starts
        with pytest.raises(worlds.WorldOptionError) as error:
            worlds.make(name, history=bad)
        message = str(error.value)
        assert "\n" not in message and f"world {name!r}: history must be a whole number >= 1" in \
            message and "--set world_options.history=4" in message and repr(bad) in message


def test_step_batch_equals_vmapped_step_with_history():
    """The auto-reset of `step_batch` (blocks of ended copies) renews the stacks as `step` does."""
    world = worlds.make("text/coin", rooms=3, history=2)
    copies, keys = 16, jax.random.split(jax.random.key(1), 16)
    state, ts = jax.vmap(world.reset)(keys)
    batch_state = state
    rng = np.random.default_rng(0)
    step, batch = jax.jit(jax.vmap(world.step)), jax.jit(world.step_batch)
    ends = 0
    for t in range(20):
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in np.asarray(ts.action_mask)])
        step_keys = jax.random.split(jax.random.key(100 + t), copies)
        state, ts = step(state, actions, step_keys)
        batch_state, batch_ts = batch(batch_state, actions, step_keys)
        for a, b in zip(jax.tree.leaves((state, ts)), jax.tree.leaves((batch_state, batch_ts)),
                        strict=True):
            np.testing.assert_array_equal(a, b)
        ends += int(np.asarray(ts.done).sum())
    assert ends > 0


def test_host_world_stack_and_saved_state():
    """A gymnasium world: the stacks follow the world's own observations through an episode end,
    and `get_state`/`set_state` carry them (a restored world steps on identically)."""
    world = worlds.make("gym:CartPole-v1", num_envs=2, history=3)
    plain = worlds.make("gym:CartPole-v1", num_envs=2)
    try:
        assert isinstance(world, HostHistoryWorld) and world.spec.observation_shape == (12,)
        ts, plain_ts = world.reset(seed=3), plain.reset(seed=3)
        np.testing.assert_array_equal(ts.observation, np.tile(plain_ts.observation, 3))
        previous, ends = ts.observation, 0
        for t in range(60):
            actions = np.array([t % 2, (t // 3) % 2])
            ts, plain_ts = world.step(actions), plain.step(actions)
            new = plain_ts.observation
            for i in range(2):
                want = np.tile(new[i], 3) if plain_ts.done[i] else np.concatenate(
                    [previous[i, 4:], new[i]])
                np.testing.assert_array_equal(ts.observation[i], want)
            np.testing.assert_array_equal(ts.reward, plain_ts.reward)
            ends += int(plain_ts.done.sum())
            previous = ts.observation
            if t == 30:
                saved = world.get_state()
        assert ends > 0 and world.frames == plain.frames
        restored = worlds.make("gym:CartPole-v1", num_envs=2, history=3)
        try:
            restored.set_state(saved)
            world.set_state(saved)
            for t in range(10):
                a, b = world.step(np.array([t % 2, 1])), restored.step(np.array([t % 2, 1]))
                np.testing.assert_array_equal(a.observation, b.observation)
        finally:
            restored.close()
    finally:
        world.close()
        plain.close()


def test_a_sequence_of_worlds_pads_each_observation_before_stacking():
    coin, quest = worlds.make("text/coin", history=2), worlds.make("text/quest", history=2)
    padded = pad_worlds([coin, quest])
    plain = pad_worlds([worlds.make("text/coin"), worlds.make("text/quest")])
    width = plain[0].spec.observation_shape[0]
    assert all(w.spec.observation_shape == (2 * width,) for w in padded)
    _, ts = padded[0].reset(jax.random.key(0))
    _, plain_ts = plain[0].reset(jax.random.key(0))
    np.testing.assert_array_equal(ts.observation, np.tile(plain_ts.observation, 2))
    with pytest.raises(IncompatibleWorldsError, match="same history"):
        pad_worlds([coin, worlds.make("text/quest", history=3)])


def test_twx_with_history_left_open_at_exit_is_silent():
    """A stacked twx world never closed exits without a word, as the plain one does
    (test_text_host_worlds.py), and its observations are the stacked ones."""
    require("textworld_express", "the 'text' extra is not installed")
    require_program("java", "Java is not installed (apt install openjdk-17-jre-headless)")
    script = ("import worlds; w = worlds.make('twx/coin', num_envs=1, history=2); "
              "print(w.reset(0).observation.shape[1] == 2 * w.world.spec.observation_shape[0])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.split()[-1] == "True"


def test_a_short_training_run_with_history_through_the_cli(tmp_path):
    """`--set world_options.history=2` reaches the world through the config: a short catch run
    trains, evaluates and records the option. It reads the history with the GRU memory
    (`model.memory=gru`, MLP encoder), so the memory goes through acting, search, the learner,
    reanalysis and evaluation; the stacked reading trains in
    test_stop_and_resume_with_history_is_bit_identical."""
    from dreamer.cli import main

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out = tmp_path / "run"
    try:
        assert main(["train", "--world", "catch", "--preset", "tiny", "--real-steps", "96",
                     "--no-progress", "--set", "run.eval_episodes=4", "--set",
                     "train.learning_starts=64", "--set", "world_options.history=2",
                     "--set", "model.memory=gru", "--set", "model.encoder=mlp",
                     "--out", str(out)]) == 0
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    saved = json.loads((out / "config.json").read_text())
    assert saved["world_options"] == {"history": 2} and saved["model"]["memory"] == "gru"
    assert (out / "eval.csv").read_text().count("\n") == 2  # the header and the final evaluation


def test_stop_and_resume_with_history_is_bit_identical(tmp_path):
    """A JAX world's stacks are part of its state, so they are in the checkpoint: a catch run
    with history=2 stopped mid-way and resumed ends equal to the uninterrupted run."""
    from dreamer import config as config_lib

    cfg = config_lib.override(config_lib.tiny(), [
        "world=catch", "world_options.history=2", "run.real_steps=128",
        "train.learning_starts=32", "run.eval_interval=64", "run.eval_episodes=4",
        "run.checkpoint_interval=64"])
    straight, _ = assert_resume_is_bit_identical(cfg, tmp_path, stop_at=64)
    assert straight.spec.observation_shape == (10, 5, 2)


# slow (67 s of the default suite's 1,993 s serial, measured one worker, cold cache): the default
# suite proves learning once, on the tiny text/coin maps; a run with history goes through the CLI
# in test_a_short_training_run_with_history_through_the_cli and stops and resumes bit-identically
# in test_stop_and_resume_with_history_is_bit_identical.
@pytest.mark.slow
def test_with_memory_the_agent_learns_the_tmaze_and_without_it_cannot(tmp_path):
    """`tmaze` (length 2): the cue that says which arm pays is seen at the start only, and the
    junction, the one choice, looks the same either way. With its last 3 observations (the start
    among them) the tiny agent learns to follow the cue in 600 real steps: greedy 1.0 over 100
    episodes, whether it reads them stacked or with the GRU memory (`model.memory=gru`). With one
    observation no policy does better than chance, 0.5: at most 0.65 here (0.5 + 3 sigma at
    n = 100)."""
    from dreamer import config as config_lib
    from dreamer.train import Trainer

    greedy = {}
    for history, memory in ((3, "stack"), (3, "gru"), (1, "stack")):
        cfg = config_lib.override(config_lib.tiny(), [
            "world=tmaze", "world_options.length=2", f"world_options.history={history}",
            f"model.memory={memory}", "run.real_steps=600",
            "run.eval_episodes=0"])  # evaluated below, over 100 episodes
        trainer = Trainer(cfg, str(tmp_path / f"history{history}_{memory}"))
        trainer.run(progress=False)
        greedy[history, memory] = float(np.mean(trainer.evaluate(100)))
    assert greedy[3, "stack"] >= 0.9, greedy
    assert greedy[3, "gru"] >= 0.9, greedy
    assert greedy[1, "stack"] <= 0.65, greedy
