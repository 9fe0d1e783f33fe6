"""`dreamer play`: a scripted person solves a generated map; a tiny trained agent is watched."""

import argparse

import jax
import pytest

import worlds
from dreamer import cli, play
from worlds.text.adventure import solve


def _args(*argv):
    parser = argparse.ArgumentParser()
    play.add_arguments(parser)
    return parser.parse_args(list(argv))


def _feed(monkeypatch, lines):
    """Makes `input()` return `lines` one by one (then EOF), echoing like a terminal would."""
    lines = iter(lines)

    def fake_input(prompt=""):
        try:
            line = next(lines)
        except StopIteration:
            raise EOFError from None
        print(prompt + line)
        return line

    monkeypatch.setattr("builtins.input", fake_input)


@pytest.mark.parametrize("name", ["text/coin", "text/quest"])
def test_typed_commands_solve_a_generated_map(name, monkeypatch, capsys):
    seed = 4
    world = worlds.make(name)
    state, _ = jax.jit(world.reset)(jax.random.key(seed))  # the session's first episode
    plan = solve(world, state.game)
    names = world.spec.action_names
    # full command texts, a short word for the first move, and a typo that is refused
    typed = ["dance"] + [names[a] for a in plan] + ["q"]
    if plan[0] < 4:
        typed[1] = names[plan[0]].split()[-1]  # "north" for "go north"
    _feed(monkeypatch, typed)
    assert play.run(_args("--world", name, "--seed", str(seed))) == 0
    out = capsys.readouterr().out
    assert "Not a command here: 'dance'" in out
    assert "You are in the" in out and "Commands: 1) " in out
    assert f"-> {names[plan[-1]]}: reward 1, score 1" in out
    assert "Episode 1 won: score 1." in out
    assert "Bye: 1 episode(s) finished, total score 1." in out


def test_numbers_pick_from_the_listed_commands(monkeypatch, capsys):
    _feed(monkeypatch, ["1", "9", "quit"])
    assert play.run(_args("--world", "text/coin", "--seed", "0")) == 0
    out = capsys.readouterr().out
    first_listed = out.split("Commands: 1) ")[1].splitlines()[0].split("  ")[0].strip()
    assert f"-> {first_listed}: reward 0, score 0" in out
    assert "Not a command here: '9'" in out


def test_world_options_shape_the_played_world(monkeypatch, capsys):
    _feed(monkeypatch, ["1", "q"])  # command 1 is a move (moves are listed first)
    assert play.run(_args("--world", "text/coin", "--option", "rooms=2",
                          "--option", "max_episode_steps=1")) == 0
    assert "*** Episode 1 ran out of steps: score 0. ***" in capsys.readouterr().out
    with pytest.raises(cli.UserError, match="expected NAME=VALUE"):
        play.run(_args("--world", "text/coin", "--option", "rooms"))
    # an option the world does not take: one line naming the options it does take
    assert cli.main(["play", "--world", "text/coin", "--option", "roomz=2"]) == 2
    assert "it takes the options rooms" in capsys.readouterr().err


def test_parse_command():
    names = ("go north", "go south", "take coin")
    assert play.parse_command("2", [0, 2], names) == 2
    assert play.parse_command(" Take   COIN ", [0, 2], names) == 2
    assert play.parse_command("north", [0, 2], names) == 0
    assert play.parse_command("take", [0, 2], names) == 2
    assert play.parse_command("go", [0, 1], names) is None  # two commands start with "go"
    assert play.parse_command("go south", [0], names) == 1  # named exactly, though not valid now
    assert play.parse_command("3", [0, 2], names) is None
    assert play.parse_command("", [0], names) is None


def test_world_without_render_and_bad_run_dir_are_user_errors(tmp_path, monkeypatch):
    _feed(monkeypatch, ["q"])
    with pytest.raises(cli.UserError, match="no render"):
        play.run(_args("--world", "catch"))
    with pytest.raises(cli.UserError, match="not a dreamer run folder"):
        play.run(_args("--agent", str(tmp_path)))
    # through the CLI: one line on stderr, exit status 2
    assert cli.main(["play", "--agent", str(tmp_path / "missing")]) == 2


def test_watch_a_continual_agent_on_any_world_of_its_sequence(tmp_path, capsys):
    """A continual agent (text/coin then text/quest) plays either world through the sequence's
    common interface: the world's own text is shown, the search's shares over the common
    commands, and the run's files are left as they were. A world outside the sequence, and a
    sequence of worlds without text, are one-line errors that say what to do."""
    import hashlib
    import json

    from conftest import TINY_COIN_OPTIONS

    from dreamer import config as config_lib
    from dreamer.train import Trainer

    options = [f"world_options.{k}={v}" for k, v in TINY_COIN_OPTIONS.items()]
    cfg = config_lib.override(config_lib.tiny(), [
        "run.worlds=text/coin,text/quest", "run.real_steps_each=32", "search.num_simulations=4",
        "run.eval_episodes=2", *options])  # learning from 100 real steps: play needs no update
    run = tmp_path / "run"
    Trainer(cfg, str(run)).run(progress=False)
    files = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*") if p.is_file()}

    assert play.run(_args("--agent", str(run), "--world", "text/quest", "--seed", "1")) == 0
    out = capsys.readouterr().out
    assert "text/quest (seed 1): agent" in out and "after 64 real steps" in out
    seen = [line for line in out.splitlines() if line.startswith("You are in the ")]
    assert seen and all("<pad>" not in line for line in seen)
    search = [line for line in out.splitlines() if line.startswith("search: ")]
    assert search and all("%" in line and "value" in line for line in search)
    assert out.count("*** Episode") == 1 and "Agent: 1 episode(s), mean score" in out
    # the first world of the sequence by default
    assert play.run(_args("--agent", str(run))) == 0
    assert "text/coin (seed 0): agent" in capsys.readouterr().out
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*")
            if p.is_file()} == files

    assert cli.main(["play", "--agent", str(run), "--world", "catch"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dreamer: error: --agent {run} was trained on the sequence text/coin,text/quest, not on "
        "catch; name one of its worlds"]
    # a sequence without text: refused before any checkpoint is read
    catches = tmp_path / "catches"
    (catches / "checkpoints").mkdir(parents=True)
    cfg = config_lib.override(config_lib.tiny(), ["run.worlds=catch,catch", "run.real_steps_each=64"])
    (catches / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert cli.main(["play", "--agent", str(catches)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "dreamer: error: world catch cannot be shown as text (it has no render); record the "
        f"agent with `dreamer eval --run {catches} --world catch --video FILE.gif`"]


@pytest.mark.xdist_group("tiny_coin")  # watches the run of the text/coin learning test
def test_watch_a_tiny_trained_agent(tiny_coin_run, capsys):
    with pytest.raises(cli.UserError, match="drop --option"):
        play.run(_args("--agent", tiny_coin_run, "--option", "rooms=5"))
    args = _args("--agent", tiny_coin_run, "--episodes", "2", "--seed", "1")
    assert play.run(args) == 0
    out = capsys.readouterr().out
    assert "after 1536 real steps" in out
    search_lines = [line for line in out.splitlines() if line.startswith("search: ")]
    assert search_lines and all("%" in line and "value" in line for line in search_lines)
    assert out.count("*** Episode") == 2 and "Agent: 2 episode(s), mean score" in out
    # the world is built with the run's options: 3-room maps and 4 steps per episode
    for episode in out.split("*** Episode")[:2]:
        rooms = {line.split("You are in the ")[1].split(".")[0]
                 for line in episode.splitlines() if line.startswith("You are in the ")}
        moves = [line for line in episode.splitlines() if line.startswith("-> ")]
        assert 1 <= len(rooms) <= 3 and 1 <= len(moves) <= 4, episode
    with pytest.raises(cli.UserError, match="trained on text/coin"):
        play.run(_args("--agent", tiny_coin_run, "--world", "text/quest"))
