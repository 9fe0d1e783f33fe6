"""The command line: fast help, and one clear line (exit 2, no traceback) for each bad input."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from host_worlds import WrappedCartPole

import worlds
from dreamer.cli import main

# one worker runs this file: its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group("tiny_catch")  # shares programs with tests/test_agent.py


def test_xdist_groups_hold(request):
    """The suite's `xdist_group`s only save compile time if their tests really share a worker:
    under `--dist loadgroup`, pytest-xdist marks a grouped test's id with its group (pytest 9.2
    stopped honouring that, hence the `pytest<9.2` pin in the dev extra)."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@tiny_catch"), request.node.nodeid
    notebooks = [item.nodeid for item in request.session.items if item.path.suffix == ".ipynb"]
    assert all("@" in nodeid for nodeid in notebooks), notebooks


def test_help_is_fast_and_imports_no_jax():
    code = "import sys; from dreamer import cli; cli._parser(); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    subprocess.run([sys.executable, "-m", "dreamer.cli", "--help"], check=True,
                   capture_output=True)


def test_each_world_family_gets_its_preset():
    import dataclasses

    from dreamer import config as config_lib

    families = {"cartpole": "small", "gym:Acrobot-v1": "small", "minatar/breakout": "minatar",
                "atari/pong": "atari100k", "text/quest": "text", "textworld/game.z8": "text",
                "twx/coin": "twx"}
    assert {w: config_lib.default_preset(w) for w in families} == families
    assert config_lib.minatar().search.algorithm == "gumbel"
    assert config_lib.small().search.algorithm == "muzero"
    # twx: the text preset, searched with Gumbel and evaluated by sampling the search policy
    twx, text = config_lib.twx(), config_lib.text()
    assert (twx.search.algorithm, twx.run.eval_temperature) == ("gumbel", 1.0)
    assert dataclasses.replace(twx, search=text.search, run=text.run) == text
    assert dataclasses.replace(twx.search, algorithm="muzero") == text.search
    assert dataclasses.replace(twx.run, eval_temperature=0.0) == text.run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--world", "minatar/brekout"], "did you mean: minatar/breakout"),
        (["train", "--preset", "tinny"], "unknown preset 'tinny'"),
        (["train", "--set", "search.num_simulation=8"], "did you mean search.num_simulations"),
        (["train", "--set", "search.num_simulations=many"], "expected int"),
        (["train", "--set", "search.algorithm=alphazero"], "must be one of muzero, gumbel"),
        (["train", "--set", "nonsense"], "expected key=value"),
        (["train", "--real-steps", "0"], "run.real_steps must be > 0"),
        (["train", "--real-steps", "-5"], "run.real_steps must be > 0"),
        (["train", "--set", "search.num_simulations=0"], "search.num_simulations must be > 0"),
        (["train", "--set", "train.batch_size=-1"], "train.batch_size must be > 0"),
        (["train", "--world", "gym:Pendulum-v1"], "box action space"),
        (["train", "--resume"], "--resume needs --out"),
        (["train", "--world", "atari/notagame"], "unknown Atari game 'notagame'"),
        (["train", "--seed", "-1"], "the seed must be >= 0"),
        (["train", "--set", "seed=-3"], "the seed must be >= 0"),
        (["eval", "--run", ".", "--episodes", "0"], "--episodes 0: must be > 0"),
        (["eval", "--run", ".", "--temperature", "-1"], "--temperature -1.0: must be >= 0"),
        (["train", "--set", "run.eval_temperature=-0.5"], "run.eval_temperature must be >= 0"),
        (["train", "--world", "atari/pongg"], "did you mean: atari/pong"),
        (["train", "--world", "text/coin", "--set", "world_options.roomz=3"],
         "it takes the options rooms, max_episode_steps"),
        (["train", "--world", "text/coin", "--set", "world_options.rooms=1"],
         "rooms must be in [2, 20], got 1"),
        (["train", "--set", "world_options=3"], "world_options.NAME=VALUE"),
    ],
)
def test_bad_input_gives_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and "\n" not in err
    assert message.lower() in err.lower()


def test_world_options_set_round_trip_and_build_the_world():
    from dreamer import config as config_lib
    from dreamer.train import make_training_world

    cfg = config_lib.override(config_lib.tiny(), [
        "world=text/coin", "world_options.rooms=8", "world_options.max_episode_steps=12",
        "world_options.extra_door_probability=0.5"])
    assert cfg.world_options == (("extra_door_probability", 0.5), ("max_episode_steps", 12),
                                 ("rooms", 8))
    assert config_lib.config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    flat = config_lib.flatten_config(cfg.to_dict())
    assert flat["world_options.rooms"] == 8 and flat["world_options.extra_door_probability"] == 0.5
    world = make_training_world(cfg)
    assert (world.rooms, world.spec.max_episode_steps) == (8, 12)
    # A config saved before world options existed loads with none.
    old = cfg.to_dict()
    del old["world_options"]
    assert config_lib.config_from_dict(old).world_options == ()


def test_resume_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert "not a dreamer run folder" in capsys.readouterr().err


def test_out_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--out", str(blocker / "run")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_eval_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert "not a dreamer run folder" in capsys.readouterr().err


def test_resume_before_the_first_checkpoint(tmp_path, capsys):
    # a run killed before its first checkpoint leaves an empty checkpoints/ (or only a
    # half-written step folder)
    (tmp_path / "checkpoints" / "32.orbax-checkpoint-tmp-1").mkdir(parents=True)
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no finished checkpoint" in err and "without --resume" in err


TRAIN = ["train", "--world", "catch", "--preset", "tiny", "--real-steps", "96", "--no-progress",
         "--set", "run.eval_episodes=4", "--set", "train.learning_starts=64"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short catch run through the CLI, shared by the tests that damage copies of it."""
    out = str(tmp_path_factory.mktemp("cli") / "run")
    assert main([*TRAIN, "--out", out]) == 0
    return out


def test_train_then_eval_through_the_cli(trained_run, capsys):
    ledger = json.load(open(os.path.join(trained_run, "ledger.json")))
    assert ledger["real"]["env_steps"] == 96 and ledger["updates"] > 0
    for name in ["ledger.json", "metrics.jsonl", "eval.csv", "config.json", "checkpoints"]:
        assert os.path.exists(os.path.join(trained_run, name)), name
    assert main(["eval", "--run", trained_run, "--episodes", "4"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 4
    result = json.load(open(os.path.join(trained_run, "eval.json")))
    assert result["episodes"] == 4 and result["env_steps"] == 96 and result["temperature"] == 0.0
    # the same checkpoint played by sampling the search policy (the same compiled program)
    assert main(["eval", "--run", trained_run, "--episodes", "4", "--temperature", "1"]) == 0
    assert json.load(open(os.path.join(trained_run, "eval.json")))["temperature"] == 1.0


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and "\n" not in err, err
    return err


def _damaged_copy(trained_run, tmp_path, damage):
    out = str(tmp_path / "run")
    shutil.copytree(trained_run, out)
    for root, _, files in os.walk(os.path.join(out, "checkpoints", "96", damage)):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 3)
    return out


@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize("damage, message", [("state", "corrupted"),
                                             ("record", "truncated or corrupted")])
def test_damaged_checkpoint_gives_one_line(trained_run, tmp_path, capsys, command, damage,
                                           message):
    out = _damaged_copy(trained_run, tmp_path, damage)
    argv = ([*TRAIN, "--out", out, "--resume"] if command == "train"
            else ["eval", "--run", out])
    assert main(argv) == 2
    err = _one_line_error(capsys)
    assert message in err and "checkpoint 96" in err


def test_resume_with_an_incompatible_config(trained_run, tmp_path, capsys):
    out = str(tmp_path / "run")
    shutil.copytree(trained_run, out)
    assert main([*TRAIN, "--out", out, "--resume", "--set", "model.hidden=48"]) == 2
    err = _one_line_error(capsys)
    assert "does not match the checkpoint" in err and "model.hidden (checkpoint 32, now 48)" in err
    assert main([*TRAIN, "--out", out, "--resume", "--set", "world_options.rows=9"]) == 2
    assert "world_options.rows (checkpoint None, now 9)" in _one_line_error(capsys)


def test_a_run_saved_before_a_config_field_existed_still_loads(trained_run, tmp_path, capsys):
    """A field added to the config later (here train.time_limit and run.eval_temperature) is absent
    from older runs' checkpoints: it takes its default, so eval and resume still work; a value the
    checkpoint does state is still compared."""
    out = str(tmp_path / "run")
    shutil.copytree(trained_run, out)
    for path in [os.path.join(out, "checkpoints", "96", "record", "metadata"),
                 os.path.join(out, "config.json")]:
        data = json.load(open(path))
        config = data.get("config", data)
        del config["train"]["time_limit"], config["run"]["eval_temperature"]
        json.dump(data, open(path, "w"))
    assert main(["eval", "--run", out, "--episodes", "4"]) == 0
    assert json.load(open(os.path.join(out, "eval.json")))["env_steps"] == 96
    capsys.readouterr()
    assert main([*TRAIN, "--out", out, "--resume", "--set", "train.time_limit=terminal"]) == 2
    assert "train.time_limit (checkpoint 'bootstrap', now 'terminal')" in _one_line_error(capsys)


class CrashingCartPole(WrappedCartPole):
    """CartPole whose emulator dies at its 20th step with a two-line message."""

    crash_at, crash_message = 20, "emulator crashed\nA.L.E: bad state"


def test_host_world_failure_gives_one_line(tmp_path, capsys):
    worlds.register("test/crashing-cartpole", CrashingCartPole)
    out = str(tmp_path / "run")
    argv = ["train", "--world", "test/crashing-cartpole", "--preset", "tiny", "--real-steps", "64",
            "--no-progress", "--out", out, "--set", "run.num_envs=1",
            "--set", "run.checkpoint_interval=8", "--set", "run.eval_episodes=0"]
    assert main(argv) == 2
    err = _one_line_error(capsys)
    assert ("world test/crashing-cartpole raised during step at real step 19: RuntimeError: "
            "emulator crashed A.L.E: bad state. The checkpoint at real step 16 holds the run") in err
    assert sorted(d for d in os.listdir(os.path.join(out, "checkpoints")) if d.isdigit()) == [
        "16", "8"]
