"""The command line: fast help, and one clear line (exit 2, no traceback) for each bad input."""

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from host_worlds import WrappedCartPole

import worlds
from dreamer.cli import main

# The tests of the module-scoped `default_train` run are in the tiny_catch xdist group: one worker
# runs them, so the fixture is built once, on the programs the tiny catch tests of tests/test_agent.py
# compile. The rest (no training, or a `dreamer train` subprocess) are free to run on any worker.
TINY_CATCH = pytest.mark.xdist_group("tiny_catch")


@TINY_CATCH
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
    # text: the recurrent memory; twx: the text preset without it (a quarter reanalysed, T = 1
    # to 5k), searched with Gumbel and evaluated by sampling the search policy
    twx, text = config_lib.twx(), config_lib.text()
    assert (text.model.memory, text.train.reanalyse_fraction) == ("recurrent", 0.99)
    assert (twx.model.memory, twx.train.reanalyse_fraction) == ("stack", 0.25)
    assert (twx.search.algorithm, twx.run.eval_temperature) == ("gumbel", 1.0)
    assert dataclasses.replace(twx, model=text.model, train=text.train, search=text.search,
                               run=text.run) == text
    assert dataclasses.replace(twx.model, memory="recurrent") == text.model
    assert dataclasses.replace(twx.train, reanalyse_fraction=0.99) == text.train
    assert dataclasses.replace(twx.search, algorithm="muzero",
                               temperature_decay_steps=100_000) == text.search
    assert dataclasses.replace(twx.run, eval_temperature=0.0) == text.run


def test_train_help_names_every_preset(capsys):
    from dreamer import config as config_lib

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    words = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    for name in config_lib.PRESETS:
        assert f"{name}," in words or f"{name} (default" in words, name


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
        (["train", "--real-steps", "10001"], "run.real_steps=10001 is not a multiple of "
                                             "run.num_envs=8 (the copies step together): use "
                                             "10000 or 10008"),
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
        (["train", "--world", "cartpole", "--set", "model.encoder=conv_mlp"],
         "model.encoder=conv_mlp needs image observations; cartpole gives vectors"),
    ],
)
def test_bad_input_gives_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("dreamer: error:") and "\n" not in err
    assert "training" not in captured.out  # nothing announced for a run that never starts
    assert message.lower() in err.lower()
    assert list(tmp_path.iterdir()) == []  # a refused command leaves no run folder behind


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


# --no-progress: the bar would only clutter the captured errors of the tests below;
# test_train_by_default_shows_the_bar_and_writes_runs_world_seed runs with it.
TRAIN = ["train", "--world", "catch", "--preset", "tiny", "--real-steps", "96", "--no-progress",
         "--set", "run.eval_episodes=4", "--set", "train.learning_starts=64"]


@pytest.fixture
def restore_signals():
    """`dreamer train` run in this process installs its SIGINT/SIGTERM handlers for good: put
    pytest's back, so Ctrl-C still stops the test session."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in handlers.items():
        signal.signal(s, handler)


@pytest.fixture(scope="module")
def default_train(tmp_path_factory):
    """One short catch run through the CLI started the way a user starts it: with the progress
    bar (on by default) and no --out, in a fresh working folder. Returns its folder (the default
    runs/catch-s0) and what it printed; the folder is shared by the tests that damage copies."""
    cwd = tmp_path_factory.mktemp("cli")
    argv = [a for a in TRAIN if a != "--no-progress"]
    before, printed = os.getcwd(), io.StringIO()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(printed):
            assert main(argv) == 0
    finally:
        os.chdir(before)
        for s, handler in handlers.items():
            signal.signal(s, handler)
    return str(cwd / "runs" / "catch-s0"), printed.getvalue()


@pytest.fixture(scope="module")
def trained_run(default_train):
    return default_train[0]


@TINY_CATCH
def test_train_by_default_shows_the_bar_and_writes_runs_world_seed(default_train):
    out, printed = default_train
    lines = re.sub(r"\x1b\[[0-9;]*m", "", printed).splitlines()  # colours, if forced
    assert lines[0] == f"dreamer: training catch (seed 0, 96 real steps) -> {os.path.join('runs', 'catch-s0')}"
    # rich's bar, rendered once when the output is not a terminal: its last state
    bars = [line for line in lines if line.startswith("real steps")]
    assert len(bars) == 1, printed
    assert re.search(r" 96/96 done .* ETA ", bars[0]), bars[0]
    # a readable summary at the end (`--json` prints the ledger instead)
    ledger = json.load(open(os.path.join(out, "ledger.json")))
    summary = lines[lines.index("dreamer: catch (seed 0) done"):]
    assert summary[1] == f"  real steps     96 ({ledger['real']['episodes']} episodes)"
    assert summary[2].startswith(f"  dreamed steps  {ledger['simulated']['total']:,} model steps")
    ratio = ledger["dream_ratio"]
    assert summary[3] == f"  dream ratio    {ratio:,.0f} model steps per real step"
    assert summary[4] == (f"  eval return    {ledger['eval']['mean_return']:.2f} +/- "
                          f"{ledger['eval']['std_return']:.2f} over 4 episodes")
    assert re.fullmatch(r"  wall time      [0-9.]+ s|  wall time      \d+ min \d+ s", summary[5])
    assert summary[6].startswith(f"  run folder     {os.path.join('runs', 'catch-s0')} ")
    assert len(summary) == 7 and "{" not in printed


@TINY_CATCH
def test_train_then_eval_through_the_cli(trained_run, capsys):
    ledger = json.load(open(os.path.join(trained_run, "ledger.json")))
    assert ledger["real"]["env_steps"] == 96 and ledger["updates"] > 0
    for name in ["ledger.json", "metrics.jsonl", "eval.csv", "config.json", "checkpoints"]:
        assert os.path.exists(os.path.join(trained_run, name)), name
    assert main(["eval", "--run", trained_run, "--episodes", "4"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 4
    result = json.load(open(os.path.join(trained_run, "eval.json")))
    assert result["episodes"] == 4 and result["env_steps"] == 96 and result["temperature"] == 0.0
    # the protocol it was measured under: every option of the evaluation copies, defaults included
    assert result["world"] == "catch"
    assert result["world_settings"] == {"rows": 10, "columns": 5, "history": 1}
    # and the run recorded the same protocol for its own evaluations, beside its training copies'
    assert ledger["world_settings"] == {"catch": {"training": result["world_settings"],
                                                  "evaluation": result["world_settings"]}}
    # the run's own final evaluation replayed: same parameters, evaluation key and episodes
    final = open(os.path.join(trained_run, "eval.csv")).read().splitlines()[-1].split(",")
    assert final[0] == "96" and float(final[3]) == result["mean_return"]
    # the same checkpoint played by sampling the search policy (the same compiled program)
    assert main(["eval", "--run", trained_run, "--episodes", "4", "--temperature", "1"]) == 0
    assert json.load(open(os.path.join(trained_run, "eval.json")))["temperature"] == 1.0
    # --world names a world of a continual run's sequence; a one-world run takes its own only
    assert main(["eval", "--run", trained_run, "--episodes", "4", "--world", "catch"]) == 0
    capsys.readouterr()
    assert main(["eval", "--run", trained_run, "--world", "cartpole"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"dreamer: error: --world cartpole: {trained_run} was trained on catch alone; drop "
        "--world (it picks a world of a continual run's sequence)")


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


@TINY_CATCH
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


@TINY_CATCH
def test_resume_with_an_incompatible_config(trained_run, tmp_path, capsys):
    out = str(tmp_path / "run")
    shutil.copytree(trained_run, out)
    assert main([*TRAIN, "--out", out, "--resume", "--set", "model.hidden=48"]) == 2
    err = _one_line_error(capsys)
    assert "does not match the checkpoint" in err and "model.hidden (checkpoint 32, now 48)" in err
    assert main([*TRAIN, "--out", out, "--resume", "--set", "world_options.rows=9"]) == 2
    assert "world_options.rows (checkpoint None, now 9)" in _one_line_error(capsys)


@TINY_CATCH
def test_resume_as_the_readme_shows_reads_the_runs_own_config(trained_run, tmp_path, capsys):
    """`dreamer train --resume --out RUN --real-steps N`, as in the README's tour: no --world,
    --preset or --set repeated. The run's config.json is the base (here the run was trained with
    --world catch --preset tiny and two --set), and what the command line does give must match
    the checkpoint."""
    out = str(tmp_path / "run")
    shutil.copytree(trained_run, out)
    assert main(["train", "--resume", "--out", out, "--seed", "3", "--no-progress"]) == 2
    assert "seed (checkpoint 0, now 3)" in _one_line_error(capsys)
    assert main(["train", "--resume", "--out", out, "--set", "model.hidden=48"]) == 2
    assert "model.hidden (checkpoint 32, now 48)" in _one_line_error(capsys)
    assert main(["train", "--resume", "--out", out, "--real-steps", "128"]) == 0  # with the bar
    printed = capsys.readouterr().out
    assert printed.startswith(f"dreamer: training catch (seed 0, 128 real steps) -> {out}")
    bars = [line for line in printed.splitlines() if line.startswith("real steps")]
    assert len(bars) == 1 and re.search(r" 128/128 done .* ETA ", bars[0]), printed
    ledger = json.load(open(os.path.join(out, "ledger.json")))
    assert ledger["real"]["env_steps"] == 128 and ledger["config"]["world"] == "catch"


@TINY_CATCH
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
    worlds.register("test/crashing-cartpole", CrashingCartPole, kind="host")
    out = str(tmp_path / "run")
    argv = ["train", "--world", "test/crashing-cartpole", "--preset", "tiny", "--real-steps", "64",
            "--no-progress", "--out", out, "--set", "run.num_envs=1",  # (bar: default_train)
            "--set", "run.checkpoint_interval=8",
            # no evaluation: the world dies before the first; test_eval_of_a_host_world_run
            # evaluates a host world
            "--set", "run.eval_episodes=0"]  # off: the world dies before the first evaluation
    assert main(argv) == 2
    err = _one_line_error(capsys)
    assert ("world test/crashing-cartpole raised during step at real step 19: RuntimeError: "
            "emulator crashed A.L.E: bad state. The checkpoint at real step 16 holds the run") in err
    assert sorted(d for d in os.listdir(os.path.join(out, "checkpoints")) if d.isdigit()) == [
        "16", "8"]


def test_no_subcommand_trains_cartpole_with_the_defaults(tmp_path, monkeypatch, capsys,
                                                        restore_signals):
    """`dreamer` alone is `dreamer train` with every default: cartpole at the small preset and its
    real steps, seed 0, the bar on, into runs/cartpole-s0. (The Trainer is a stand-in: the real
    default run takes minutes; test_train_by_default_shows_the_bar_and_writes_runs_world_seed
    runs the default --out and bar for real.)"""
    from dreamer import config as config_lib
    from dreamer import train as train_lib

    seen = []

    from dreamer.ledger import SampleLedger

    def Ledger():
        return SampleLedger(world="cartpole", seed=0, config={})

    class StandInTrainer:
        def __init__(self, config, out_dir, resume=False, announce=None):
            seen.append({"config": config, "out": out_dir, "resume": resume})
            announce()

        def run(self, progress=True, stop_flag=None):
            seen[-1].update(progress=progress, stopped=stop_flag())
            return Ledger()

    monkeypatch.setattr(train_lib, "Trainer", StandInTrainer)
    monkeypatch.chdir(tmp_path)
    out = os.path.join("runs", "cartpole-s0")
    expected = config_lib.override(config_lib.small(), ["world=cartpole", "seed=0"])
    for argv in (["dreamer"], ["dreamer", "--debug"]):
        monkeypatch.setattr(sys, "argv", argv)
        assert main() == 0  # argv None: what the `dreamer` script calls
        assert seen.pop() == {"config": expected, "out": out, "resume": False, "progress": True,
                              "stopped": False}
        assert capsys.readouterr().out.splitlines()[0] == (
            f"dreamer: training cartpole (seed 0, {expected.run.real_steps} real steps) -> {out}")
    # the run folder is made by the trainer (a stand-in here) once the world and config are good
    assert expected.run.real_steps == 6_000 and not (tmp_path / "runs").exists()


def test_worlds_lists_the_registered_worlds(capsys):
    assert main(["worlds"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [*worlds.names(),
                     "gym:<ID>  (any installed gymnasium env with a Discrete action space)"]
    assert {"cartpole", "catch", "minatar/breakout", "text/coin", "atari/pong"} <= set(lines)
    assert len(lines) == len(set(lines))


def test_debug_gives_the_traceback(tmp_path, monkeypatch, restore_signals):
    """--debug raises what the one-line error would have named (test_bad_input_gives_one_line
    gives the same inputs without it)."""
    from dreamer.cli import UserError

    monkeypatch.chdir(tmp_path)  # the run folder runs/minatar-brekout-s0 is made before the world
    with pytest.raises(worlds.UnknownWorldError, match="Did you mean: minatar/breakout"):
        main(["--debug", "train", "--world", "minatar/brekout"])
    with pytest.raises(UserError, match="the seed must be >= 0"):
        main(["--debug", "train", "--seed", "-1"])
    # as a user sees it: Python's traceback, not the one line
    done = subprocess.run([sys.executable, "-m", "dreamer.cli", "--debug", "train", "--seed", "-1"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):"), done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "dreamer.errors.UserError: --seed -1: the seed must be >= 0")
    assert "dreamer: error:" not in done.stderr


def test_sigterm_writes_a_final_checkpoint(tmp_path):
    """SIGTERM (a scheduler's or `kill`'s stop) ends a run like Ctrl-C: a checkpoint at the step
    reached, exit 130 (tests/test_kill_resume.py::test_sigint_writes_a_final_checkpoint)."""
    out = str(tmp_path / "run")
    argv = [*TRAIN, "--real-steps", "384", "--set", "run.checkpoint_interval=100000", "--out", out,
            "--json"]
    env = dict(os.environ, DREAMER_CACHE=jax_cache_dir())
    proc = subprocess.Popen([sys.executable, "-m", "dreamer.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 600
    # metrics.jsonl gets its first line after the first updates (at 64 real steps): mid-run
    metrics = os.path.join(out, "metrics.jsonl")
    while proc.poll() is None and time.time() < deadline and not (
            os.path.exists(metrics) and os.path.getsize(metrics)):
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the signal: " + proc.stderr.read()[-2000:]
    proc.send_signal(signal.SIGTERM)
    printed, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    ledger = json.load(open(os.path.join(out, "ledger.json")))
    steps = ledger["real"]["env_steps"]
    assert 64 <= steps < 384 and steps % 32 == 0  # whole iterations, stopped mid-run
    assert json.loads(printed.splitlines()[-1])["real"] == ledger["real"]
    assert [d for d in os.listdir(os.path.join(out, "checkpoints")) if d.isdigit()] == [str(steps)]


def jax_cache_dir():
    import jax

    return jax.config.jax_compilation_cache_dir  # the session's: share compiled programs


# A tiny gymnasium CartPole run: tests/test_agent.py's tiny_cartpole config (so its programs).
CARTPOLE = ["train", "--world", "gym:CartPole-v1", "--preset", "tiny", "--real-steps", "128",
            "--no-progress", "--set", "run.num_envs=2", "--set", "run.collect_steps=16",
            "--set", "train.learning_starts=64", "--set", "run.eval_episodes=2",
            "--set", "run.eval_interval=100000"]


@pytest.mark.xdist_group("tiny_cartpole")  # the programs of tests/test_agent.py's cartpole runs
def test_eval_of_a_host_world_run(tmp_path, monkeypatch, capsys, restore_signals):
    """`dreamer eval --run` on a gymnasium world's run (its default --out, runs/gym-CartPole-v1-s0,
    with ':' replaced) replays the run's own final evaluation: the same parameters, evaluation key
    and held-out episodes give the same returns."""
    monkeypatch.chdir(tmp_path)
    assert main(CARTPOLE) == 0
    out = os.path.join("runs", "gym-CartPole-v1-s0")
    rows = (tmp_path / out / "eval.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[0] == "128"  # the final evaluation alone
    final_mean = float(rows[1].split(",")[3])
    capsys.readouterr()
    assert main(["eval", "--run", out]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    result = json.load(open(os.path.join(out, "eval.json")))
    assert {k: result[k] for k in ("env_steps", "updates", "episodes", "temperature")} == {
        "env_steps": 128, "updates": 96, "episodes": 2, "temperature": 0.0}
    assert printed["mean_return"] == result["mean_return"]
    assert all(r == int(r) and 1 <= r <= 500 for r in result["returns"])  # CartPole: steps
    assert result["mean_return"] == final_mean
    # --video of a host world: its evaluation copies stepped from here, the same episodes; a
    # vector world gets a transcript
    assert main(["eval", "--run", out, "--video", str(tmp_path / "cp.gif")]) == 2
    assert "record a transcript instead: --video " in capsys.readouterr().err
    assert main(["eval", "--run", out, "--video", str(tmp_path / "cp.txt"), "--episodes", "2"]) == 0
    text = (tmp_path / "cp.txt").read_text()
    returns = json.load(open(os.path.join(out, "eval.json")))["returns"]
    assert returns == result["returns"]
    for number, score in enumerate(returns, 1):
        assert f"*** Episode {number} ended after {score:g} steps: score {score:g} ***" in text
    assert text.count("[step 0] observation [") == 2


def test_the_summary_reads_the_ledger():
    """What `dreamer train` and `dreamer dream` end with (without --json): counts with thousands
    separators, the dream ratio, the newest evaluation, the wall time and the run folder."""
    from dreamer.cli import summary_text
    from dreamer.ledger import SampleLedger

    ledger = SampleLedger(world="minatar/breakout", seed=3, config={}, env_steps=100_000,
                          episodes=412, search=5_000_000, reanalyse=7_000_000, dream=0,
                          unroll=1_234_567, updates=25_000, dream_updates=5_000,
                          eval_episodes=100, eval_mean_return=9.876, eval_std_return=3.21,
                          wall_seconds=7_384.0)
    assert summary_text(ledger, "runs/b", "dreamed").splitlines() == [
        "dreamer: minatar/breakout (seed 3) dreamed",
        "  real steps     100,000 (412 episodes)",
        "  dreamed steps  13,234,567 model steps (25,000 learner updates, 5,000 of them dreamed "
        "with no real step)",
        "  dream ratio    132 model steps per real step",
        "  eval return    9.88 +/- 3.21 over 100 episodes",
        "  wall time      2 h 03 min",
        "  run folder     runs/b (ledger.json, eval.csv; `dreamer eval --run runs/b`)"]
    fresh = SampleLedger(world="catch", seed=0, config={}, env_steps=32, search=64,
                         wall_seconds=75.5)
    fresh.count_world("catch", 32, 32, 3)
    lines = summary_text(fresh, "r").splitlines()
    assert lines[2] == "    catch: 32"  # a continual run's worlds, one line each
    assert lines[4] == "  dream ratio    2.0 model steps per real step"
    assert lines[5] == "  eval return    none yet"
    assert lines[6] == "  wall time      1 min 15 s"
