"""Continual learning (`dreamer train --worlds A,B --real-steps-each N`): one agent learns a
sequence of worlds through one padded interface (`worlds.padded`), is evaluated on every world
after each phase (continual.csv), counts real steps per world, and resumes in its phase."""

import csv
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from dreamer import cli
from dreamer import config as config_lib
from dreamer.train import Trainer
from worlds.base import WorldSpec
from worlds.catch import Catch
from worlds.padded import IncompatibleWorldsError, PaddedWorld, common_interface, pad_worlds

# one worker runs the continual runs, so they reuse each other's compiled programs
pytestmark = pytest.mark.xdist_group("continual")


class TwoChannelCatch(Catch):
    """Catch with a second channel (the board's complement) and four actions in another order,
    one of them (`wait`) new: the second world of the tiny sequence, so its padding covers
    both channels and actions."""

    ACTIONS = ("stay", "left", "right", "wait")

    def __init__(self, rows: int = 10, columns: int = 5):
        super().__init__(rows, columns)
        self.spec = WorldSpec(
            name="test/two-channel-catch", observation_shape=(rows, columns, 2),
            observation_dtype="float32", num_actions=4, action_names=self.ACTIONS,
            max_episode_steps=rows - 1, observation_kind="image", reward_range=(-1.0, 1.0))

    def _observe(self, s):
        board = super()._observe(s)
        return jnp.concatenate([board, 1.0 - board], axis=-1)

    def _step(self, game, action, key):  # stay, left, right, wait -> Catch's 1, 0, 2, 1
        return super()._step(game, jnp.asarray([1, 0, 2, 1])[action], key)


if "test/two-channel-catch" not in worlds.names():
    worlds.register("test/two-channel-catch", TwoChannelCatch)

SEQUENCE = "catch,test/two-channel-catch"

# 32 real steps an iteration (4 copies x 8), 64 a world: 2 iterations a phase; 8 updates an
# iteration from 32 real steps on, reanalysing half their samples (the `tiny` preset's default:
# the rehearsed rows of the first world are searched with their own action masks); 4 evaluation
# episodes; a checkpoint every iteration.
SETTINGS = [f"run.worlds={SEQUENCE}", "run.real_steps_each=64", "train.learning_starts=32",
            "train.train_ratio=0.25", "search.num_simulations=4",
            "run.eval_episodes=4", "run.eval_interval=64", "run.checkpoint_interval=32"]


def tiny_continual(*overrides):
    return config_lib.override(config_lib.tiny(), [*SETTINGS, *overrides])


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _params_bytes(trainer):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(
        (trainer.train_state, trainer.replay, trainer.collector.state))]


# --- the padding mechanism -----------------------------------------------------------------------
def test_a_continual_run_learns_its_policy_over_legal_actions():
    """`train.legal_policy_loss` is True for a sequence unless assigned (a world lacks some of
    the common actions; see the field's docstring), False for one world, and kept as saved when a
    continual run's config is overridden."""
    assert tiny_continual().train.legal_policy_loss
    off = tiny_continual("train.legal_policy_loss=false")
    assert not off.train.legal_policy_loss
    assert not config_lib.tiny().train.legal_policy_loss
    # overriding a saved continual config (a resume) keeps the value it was run with
    assert not config_lib.override(off, ["run.real_steps_each=128"]).train.legal_policy_loss


def test_padded_world_steps_as_the_original():
    """Stepped with the same keys and actions, a padded world's observations are the world's on
    its own channels and 0 on the others, its rewards and ends are the world's, its actions sit
    at their common indices (by name) and the common actions it lacks are illegal."""
    catch, wide = Catch(), TwoChannelCatch()
    padded_catch, padded_wide = pad_worlds([catch, wide])
    assert padded_catch.spec.observation_shape == padded_wide.spec.observation_shape == (10, 5, 2)
    assert padded_catch.spec.action_names == ("left", "stay", "right", "wait")
    assert padded_catch.spec.has_action_mask and padded_wide.spec.num_actions == 4
    assert padded_wide.action_index.tolist() == [1, 0, 2, 3]  # stay, left, right, wait

    for world, padded, common_actions in (
            (catch, padded_catch, [0, 1, 2]), (wide, padded_wide, [1, 0, 2, 3])):
        batch = 16
        keys = jax.random.split(jax.random.key(3), batch)
        state, ts = jax.vmap(world.reset)(keys)
        pstate, pts = jax.vmap(padded.reset)(keys)
        own = world.spec.observation_shape[-1]
        for t in range(12):  # past the episodes' ends (9 steps): auto-reset included
            key = jax.random.fold_in(jax.random.key(4), t)
            action = jax.random.randint(key, (batch,), 0, world.spec.num_actions)
            step_keys = jax.random.split(jax.random.fold_in(key, 1), batch)
            np.testing.assert_array_equal(pts.observation[..., :own], ts.observation)
            np.testing.assert_array_equal(pts.observation[..., own:], 0.0)
            mask = np.zeros((batch, 4), bool)
            mask[:, common_actions] = np.asarray(ts.action_mask)
            np.testing.assert_array_equal(pts.action_mask, mask)
            state, ts = jax.vmap(world.step)(state, action, step_keys)
            common = jnp.asarray(common_actions)[action]
            pstate, pts = jax.vmap(padded.step)(pstate, common, step_keys)
            for field in ("reward", "terminated", "truncated"):
                np.testing.assert_array_equal(getattr(pts, field), getattr(ts, field))
    # catch lacks `wait`: never legal there
    _, first = padded_catch.reset(jax.random.key(0))
    assert first.action_mask.tolist() == [True, True, True, False]


def test_a_padded_text_world_renders_its_own_observation():
    """A padded text world renders the world's own text from a padded observation (`dreamer
    play --agent` shows a continual agent's worlds so); a world without render gives a padded
    world without it."""
    coin, quest = worlds.make("text/coin", rooms=3), worlds.make("text/quest")
    padded_coin, padded_quest = pad_worlds([coin, quest])
    lengths = (coin.spec.observation_shape[-1], quest.spec.observation_shape[-1])
    assert lengths[0] != lengths[1]  # so one of the two is padded
    for world, padded in ((coin, padded_coin), (quest, padded_quest)):
        _, ts = world.reset(jax.random.key(1))
        _, pts = padded.reset(jax.random.key(1))
        assert pts.observation.shape == (max(lengths),)
        assert padded.render(pts.observation) == world.render(ts.observation)
        assert padded.render(pts.observation).startswith("You are in the ")
    assert not hasattr(pad_worlds([Catch(), TwoChannelCatch()])[0], "render")


def test_common_interface_refuses_worlds_that_cannot_share_a_network():
    """Kinds, dtypes, ranks and sizes before the last axis must agree; token vocabularies too;
    host worlds are refused. Each message names both worlds and the fix."""
    def spec(name, shape, kind="image", dtype="float32", actions=("a", "b")):
        return WorldSpec(name=name, observation_shape=shape, observation_dtype=dtype,
                         num_actions=len(actions), action_names=actions, max_episode_steps=10,
                         observation_kind=kind)

    image = spec("img", (10, 10, 4))
    cases = [
        (spec("vec", (4,), kind="vector"), "image and vector observations"),
        (spec("tok", (10, 10, 4), kind="tokens"), "image and tokens observations"),
        (spec("u8", (10, 10, 4), dtype="uint8"), "dtype float32 and uint8"),
        (spec("flat", (10, 40)), "rank 3"),
        (spec("small", (10, 5, 4)), "differ before their last axis"),
    ]
    for other, what in cases:
        with pytest.raises(IncompatibleWorldsError, match=f"img and {other.name}.*{what}.*; "):
            common_interface([image, other])
    tokens = [spec("t1", (8,), kind="tokens", dtype="int32"),
              spec("t2", (6,), kind="tokens", dtype="int32")]
    assert common_interface(tokens).observation_shape == (8,)
    with pytest.raises(IncompatibleWorldsError, match="vocabularies differ"):
        common_interface(tokens, [("<pad>", "a"), ("<pad>", "b")])
    # a name repeated in a world is matched occurrence by occurrence
    repeated = common_interface([spec("r1", (3,), "vector", actions=("x", "x")),
                                 spec("r2", (3,), "vector", actions=("x", "y", "x", "x"))])
    assert repeated.action_names == ("x", "x", "y", "x")
    with pytest.raises(IncompatibleWorldsError, match="host world"):
        PaddedWorld(worlds.make("gym:CartPole-v1", num_envs=1), repeated)


def test_bad_sequences_are_refused_in_one_line(tmp_path, capsys):
    """The CLI prints one `dreamer: error:` line naming the problem and the fix, before any run
    folder exists."""
    out = str(tmp_path / "run")
    cases = [
        (["--worlds", "catch,cartpole", "--real-steps-each", "64"],
         "catch and cartpole cannot share one network: image and vector observations"),
        (["--worlds", "catch,minatar/breakout", "--real-steps-each", "64"],
         r"observations \(10, 5, 1\) and \(10, 10, 4\) differ before their last axis"),
        (["--worlds", "catch,catch"], "give each world's real budget, --real-steps-each"),
        (["--worlds", "catch,catch", "--real-steps-each", "30"],
         "run.real_steps_each=30 is not a multiple of run.num_envs=4"),
        (["--worlds", "catch,catch", "--real-steps", "64"], "give each world's budget with "
                                                            "--real-steps-each"),
        (["--world", "catch", "--worlds", "catch,catch"], "--world and --worlds: give one"),
        (["--worlds", "catch,nosuch", "--real-steps-each", "64"], "unknown world 'nosuch'"),
    ]
    for extra, message in cases:
        code = cli.main(["train", "--preset", "tiny", "--out", out, "--no-progress", *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith("dreamer: error: ") and re.search(message, err), err
    assert not os.path.exists(out)


# --- a continual run -----------------------------------------------------------------------------
def test_sequence_evaluates_every_world_after_each_phase(tmp_path):
    """Two phases of 64 real steps: continual.csv holds phase x world rows (R[i, j]) at the
    phase ends, the ledger counts exactly 64 real steps per world and 128 in all (evaluation
    not counted), the per-world episodes add up, and R[i, i] is eval.csv's row of that step (the
    same key and parameters). The run's network has the common interface's shapes."""
    out = str(tmp_path / "run")
    trainer = Trainer(tiny_continual(), out)
    assert trainer.spec.observation_shape == (10, 5, 2) and trainer.spec.num_actions == 4
    ledger = trainer.run(progress=False)
    assert ledger.env_steps == 128 and ledger.frames == 128
    assert {name: c["env_steps"] for name, c in ledger.by_world.items()} == {
        "catch": 64, "test/two-channel-catch": 64}
    assert sum(c["episodes"] for c in ledger.by_world.values()) == ledger.episodes
    assert ledger.updates == 8 * 4  # learning from 32 real steps on: 4 iterations of 8 updates
    # each update reanalyses 16 of its 32 windows: K + 1 = 4 roots each, 4 simulations a root
    assert ledger.reanalyse == 32 * 16 * 4 * 4
    saved = json.load(open(os.path.join(out, "ledger.json")))
    assert saved["real"]["by_world"]["catch"]["env_steps"] == 64
    assert saved["world"] == SEQUENCE

    rows = _rows(os.path.join(out, "continual.csv"))
    assert [(r["phase"], r["trained_world"], r["eval_world"], r["env_steps"], r["episodes"])
            for r in rows] == [
        ("0", "catch", "catch", "64", "4"), ("0", "catch", "test/two-channel-catch", "64", "4"),
        ("1", "test/two-channel-catch", "catch", "128", "4"),
        ("1", "test/two-channel-catch", "test/two-channel-catch", "128", "4")]
    for r in rows:
        assert -1.0 <= float(r["mean_return"]) <= 1.0
    evals = {r["env_steps"]: r for r in _rows(os.path.join(out, "eval.csv"))}
    assert float(evals["64"]["mean_return"]) == float(rows[0]["mean_return"])
    assert float(evals["128"]["mean_return"]) == float(rows[3]["mean_return"])


class _Crash(Exception):
    """Stands for the process dying at the end of an iteration, before any checkpoint of it."""


def test_continual_resume_is_bit_identical(tmp_path):
    """Stopped at the first phase's end (before its evaluation on every world), resumed (it makes
    that evaluation and starts the second world first), then killed mid-second-phase after a
    row past the newest checkpoint, and resumed again: it ends equal to the uninterrupted run,
    the learner, replay and collector bit for bit, continual.csv, eval.csv and metrics.jsonl
    byte for byte."""
    straight = Trainer(tiny_continual(), str(tmp_path / "a"))
    straight.run(progress=False)

    out = str(tmp_path / "b")
    first = Trainer(tiny_continual(), out)
    first.run(progress=False, stop_flag=lambda: first.ledger.env_steps == 64)
    assert not os.path.exists(os.path.join(out, "continual.csv"))  # put off with the stop
    resumed = Trainer(tiny_continual(), out, resume=True)
    assert resumed.loop.phase == 0 and resumed.world.spec.name == "catch"

    def crash_at_128():
        if resumed.ledger.env_steps == 128:
            raise _Crash

    with pytest.raises(_Crash):
        resumed.run(progress=False, stop_flag=crash_at_128)
    assert len(_rows(os.path.join(out, "continual.csv"))) == 2  # the first phase's
    resumed = Trainer(tiny_continual(), out, resume=True)
    assert resumed.ledger.env_steps == 96 and resumed.loop.phase == 1
    assert resumed.world.spec.name == "test/two-channel-catch"
    resumed.run(progress=False)
    assert resumed.ledger.to_json()["real"] == straight.ledger.to_json()["real"]
    assert resumed.ledger.simulated == straight.ledger.simulated
    assert _params_bytes(resumed) == _params_bytes(straight)
    for name in ("continual.csv", "eval.csv", "metrics.jsonl"):
        assert open(os.path.join(out, name), "rb").read() == open(
            tmp_path / "a" / name, "rb").read(), name


def test_without_rehearsal_the_replay_starts_empty(tmp_path):
    """run.rehearsal=false empties the replay when the next world starts, and the learner waits
    for train.learning_starts real steps of it: 8 updates in each phase's second iteration
    (with rehearsal, in the second world's first one too)."""
    trainer = Trainer(tiny_continual("run.rehearsal=false", "train.learning_starts=64"),
                      str(tmp_path / "run"))
    ledger = trainer.run(progress=False)
    assert ledger.updates == 8 * 2
    assert int(trainer.replay.num_rows) == 64 // 4  # the second world's rows alone


def test_dreaming_between_phases_takes_no_real_step(tmp_path):
    """run.dream_between=8: 8 learner updates on the replay alone after the first phase (none
    after the last), with a whole-replay reanalysis pass first; the real counts are unchanged,
    the dreamed updates and model steps are counted, and eval.csv gains its dream column."""
    out = str(tmp_path / "run")
    ledger = Trainer(tiny_continual("run.dream_between=8"), out).run(progress=False)
    assert ledger.env_steps == 128 and ledger.updates == 8 * 4 + 8 and ledger.dream_updates == 8
    assert {name: c["env_steps"] for name, c in ledger.by_world.items()} == {
        "catch": 64, "test/two-channel-catch": 64}
    assert ledger.dream > 0
    assert "dream_updates" in open(os.path.join(out, "eval.csv")).readline()
    assert len(_rows(os.path.join(out, "continual.csv"))) == 4


def test_cli_trains_a_sequence(tmp_path, capsys):
    """`dreamer train --worlds A,B --real-steps-each N` is run.worlds and run.real_steps_each;
    `dreamer eval` evaluates the run on every world (the last phase's continual.csv rows: the
    same key and parameters), or with `--world W --video FILE` on W alone, recorded; `dreamer
    report` on the run has a Continual section with the phase x world table."""
    out = str(tmp_path / "run")
    settings = [a for s in SETTINGS[2:] for a in ("--set", s)]
    argv = ["train", "--worlds", SEQUENCE, "--real-steps-each", "64", "--preset", "tiny",
            "--out", out, "--no-progress", *settings]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.startswith(
        f"dreamer: training catch, then test/two-channel-catch (seed 0, 64 real steps each) -> "
        f"{out}")
    saved = config_lib.config_from_dict(json.load(open(os.path.join(out, "config.json"))))
    assert saved == tiny_continual()
    rows = _rows(os.path.join(out, "continual.csv"))
    assert len(rows) == 4
    capsys.readouterr()
    assert cli.main(["eval", "--run", out]) == 0
    evaluated = json.load(open(os.path.join(out, "eval.json")))
    assert {name: w["mean_return"] for name, w in evaluated["worlds"].items()} == {
        r["eval_world"]: float(r["mean_return"]) for r in rows[2:]}
    # one world of the sequence, recorded: its first 2 evaluation episodes (the key of the run's
    # evaluations), drawn from the padded frames; the run's files but eval.json untouched
    before = {f: open(os.path.join(out, f), "rb").read() for f in ("continual.csv", "eval.csv")}
    gif = str(tmp_path / "wide.gif")
    capsys.readouterr()
    assert cli.main(["eval", "--run", out, "--world", "test/two-channel-catch", "--video", gif,
                     "--episodes", "2"]) == 0
    printed = capsys.readouterr().out
    recorded = json.load(open(os.path.join(out, "eval.json")))
    assert list(recorded["worlds"]) == ["test/two-channel-catch"]
    wide = recorded["worlds"]["test/two-channel-catch"]
    assert wide["returns"] == evaluated["worlds"]["test/two-channel-catch"]["returns"][:2]
    scores = ", ".join(f"{r:g}" for r in wide["returns"])
    assert f"dreamer: recorded 2 episode(s) of test/two-channel-catch, score {scores}:" in printed
    assert os.path.getsize(gif) > 0
    assert before == {f: open(os.path.join(out, f), "rb").read() for f in before}
    assert cli.main(["eval", "--run", out, "--world", "minatar/breakout"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"dreamer: error: --world minatar/breakout: not a world of {out}'s sequence {SEQUENCE}; "
        "name one of them")
    report = str(tmp_path / "report")
    assert cli.main(["report", out, "--out", report]) == 0
    text = open(os.path.join(report, "report.md")).read()
    assert "## Continual" in text and "| after catch |" in text
