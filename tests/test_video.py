"""`dreamer eval --run RUN --video FILE`: the evaluation's episodes recorded as a GIF or an MP4
(image worlds) or a transcript (any world), the one file eval writes besides RUN/eval.json."""

import json
import os

import jax
import numpy as np
import pytest
from snapshot import snapshot

import worlds
from dreamer import cli, video
from dreamer import config as config_lib
from dreamer.errors import UserError
from dreamer.train import train
from worlds.base import WorldSpec

# tests/test_cli.py's tiny catch run (its programs, in the same xdist group)
TINY_CATCH = pytest.mark.xdist_group("tiny_catch")
CATCH_STEPS = 9  # every catch episode: the ball falls 9 rows
CATCH_FRAME = (176, 188)  # 10x5 board x16 = 160x80, under a 28-pixel strip, at least 176 wide


@pytest.fixture(scope="module")
def catch_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("video") / "run")
    cfg = config_lib.override(config_lib.tiny(), [
        "world=catch", "run.real_steps=96", "run.eval_episodes=4", "train.learning_starts=64"])
    train(cfg, out, progress=False)
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dreamer: error: "), err
    return err


@TINY_CATCH
def test_eval_records_a_gif_of_its_episodes(catch_run, tmp_path, capsys):
    from PIL import Image

    before = snapshot(catch_run)
    path = str(tmp_path / "catch.gif")
    assert cli.main(["eval", "--run", catch_run, "--video", path, "--episodes", "3"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    after = snapshot(catch_run)
    del after["eval.json"]
    assert after == before  # read-only: the video is written where asked, nothing else
    assert sorted(os.listdir(tmp_path)) == ["catch.gif"]  # and no temporary file is left
    result = json.load(open(os.path.join(catch_run, "eval.json")))
    assert result["episodes"] == 3
    # the recorded episodes are the evaluation's own: the same scores
    scores = ", ".join(f"{r:g}" for r in result["returns"])
    frames = 3 * (CATCH_STEPS + 1)  # each step's observation, then the end held
    assert printed[-2] == (f"dreamer: recorded 3 episode(s) of catch, score {scores}: {frames} frames "
                           f"of 176x188 -> {path}")
    with Image.open(path) as gif:
        assert gif.n_frames == frames and gif.size == CATCH_FRAME
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            if i == 0:  # the ball (top row) and the paddle (bottom row) in white, upscaled x16
                rgb = np.asarray(gif.convert("RGB"))
                board = rgb[video.BANNER:, (176 - 80) // 2:(176 + 80) // 2]
                assert board.shape == (160, 80, 3)
                white = board.min(axis=-1) == 255
                assert white[:16].sum() == 16 * 16 and white[-16:].sum() == 16 * 16
                assert white[16:-16].sum() == 0
    assert durations == [video.FRAME_MS] * CATCH_STEPS + [video.END_MS] + (
        [video.FRAME_MS] * CATCH_STEPS + [video.END_MS]) * 2


@TINY_CATCH
def test_eval_records_an_mp4_and_a_transcript(catch_run, tmp_path, capsys):
    import cv2

    mp4 = str(tmp_path / "catch.mp4")
    assert cli.main(["eval", "--run", catch_run, "--video", mp4]) == 0  # one episode by default
    capture = cv2.VideoCapture(mp4)
    try:
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == CATCH_STEPS + 1
        ok, image = capture.read()
        assert ok and image.shape == (CATCH_FRAME[1], CATCH_FRAME[0], 3)
    finally:
        capture.release()
    assert json.load(open(os.path.join(catch_run, "eval.json")))["episodes"] == 1
    txt = tmp_path / "catch.txt"
    assert cli.main(["eval", "--run", catch_run, "--video", str(txt), "--episodes", "2"]) == 0
    text = txt.read_text()
    assert text.count("=== Episode") == 2 and text.count("  -> ") == 2 * CATCH_STEPS
    returns = json.load(open(os.path.join(catch_run, "eval.json")))["returns"]
    for number, score in enumerate(returns, 1):
        assert f"*** Episode {number} ended after 9 steps: score {score:g} ***" in text
    assert "a transcript -> " in capsys.readouterr().out


def test_a_bad_video_name_is_one_line(tmp_path, capsys):
    # the name is checked first: no run is read, nothing is written
    assert cli.main(["eval", "--run", str(tmp_path), "--video", "out.avi"]) == 2
    assert "--video out.avi: unknown format '.avi'; name a .gif or .mp4 file" in _one_line_error(
        capsys)
    assert cli.main(["eval", "--run", str(tmp_path), "--video", str(tmp_path / "no" / "a.gif")]
                    ) == 2
    assert "does not exist" in _one_line_error(capsys)
    assert not os.listdir(tmp_path)


def test_a_text_world_gets_a_transcript():
    coin = worlds.make("text/coin")
    with pytest.raises(UserError, match=r"--video run/coin.gif: text/coin is a text world, with "
                       r"no picture to put in a .gif; record a transcript instead: --video "
                       r"run/coin.txt"):
        video.check_world("run/coin.gif", coin.spec)
    video.check_world("run/coin.txt", coin.spec)
    with pytest.raises(UserError, match="--video c.mp4: cartpole is a world of 4-number vector"):
        video.check_world("c.mp4", worlds.make("cartpole").spec)
    _, ts = jax.jit(coin.reset)(jax.random.key(0))
    step = video.Step(np.asarray(ts.observation), 2, 1.0)
    text = video.transcript([video.Episode([step], terminated=True)], coin.spec, coin)
    assert f"[step 0] {coin.render(ts.observation)}" in text
    assert f"  -> {coin.spec.action_names[2]}: reward 1, score 1" in text
    assert "*** Episode 1 ended after 1 steps: score 1 ***" in text


def _spec(name, shape, dtype="float32"):
    return WorldSpec(name=name, observation_shape=shape, observation_dtype=dtype, num_actions=1,
                     action_names=("noop",), max_episode_steps=10, observation_kind="image")


def test_pictures_of_channels_and_frame_stacks():
    minatar = _spec("minatar/breakout", (10, 10, 4))
    board = np.zeros((10, 10, 4), np.float32)
    board[2, 3, 1] = 1  # ball
    board[2, 3, 2] = 1  # trail under it: the higher channel wins, as in MinAtar's display
    board[9, 0, 0] = 1  # paddle
    image = video.picture(board, minatar)
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    assert tuple(image[2, 3]) == video.PALETTE[2] and tuple(image[9, 0]) == video.PALETTE[0]
    assert tuple(image[0, 0]) == (0, 0, 0)
    assert video.scale_of(minatar) == 16 and video.frame_size(minatar) == (176, 188)
    big = video.frame(image, minatar, "episode 1/1 step 0\nscore 0")
    assert big.shape == (188, 176, 3)
    left = (176 - 160) // 2
    assert (big[video.BANNER + 32:video.BANNER + 48, left + 48:left + 64] == video.PALETTE[2]).all()
    atari = _spec("atari/pong", (96, 96, 4), "uint8")
    stack = np.zeros((96, 96, 4), np.uint8)
    stack[..., 3] = 200  # the newest frame
    assert (video.picture(stack, atari) == 200).all()
    assert video.frame_size(atari) == (192, 220)
    rgb = np.zeros((96, 96, 12), np.uint8)
    rgb[..., 9:] = (1, 2, 3)
    assert (video.picture(rgb, _spec("atari/pong", (96, 96, 12), "uint8"),
                          {"grayscale": False}) == (1, 2, 3)).all()
