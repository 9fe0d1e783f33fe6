"""`dreamer dream`: learner updates and whole-replay passes on a run's stored experience alone.

No world step, hand-computed ledger counts, the source folder untouched by `--out`, the schedule,
a stop and a kill that lose nothing checkpointed, determinism, and the folder that eval, report,
play --agent and train --resume accept."""

import base64
import hashlib
import json
import os
import pickle
import shutil

import jax
import numpy as np
import pytest

import worlds
from dreamer import agent as agent_lib
from dreamer import cli, dream
from dreamer import config as config_lib
from dreamer.checkpoint import Checkpointer
from dreamer.train import Trainer

# one worker runs the tiny catch runs, so they reuse each other's compiled programs
pytestmark = pytest.mark.xdist_group("tiny_catch")

# The trained run: 32 real steps an iteration, 8 iterations, learning from step 100 (iterations
# 4-8): 160 updates in phases of 32. The target network refreshes every 20 updates.
RUN = ["world=catch", "run.real_steps=256", "train.learning_starts=100", "run.eval_interval=1000",
       "run.eval_episodes=10"]
S, B, K, REANALYSED, CHUNK = 8, 32, 3, 16, 64  # simulations, batch, unroll, reanalysed, pass chunk
UPDATE_COST = B * K + REANALYSED * (K + 1) * S  # training unroll + per-update reanalysis
PASS_COST = 4 * CHUNK * S  # 256 stored rows (64 in each of 4 streams): 4 search calls of 64 roots


def tiny_catch(*overrides):
    return config_lib.override(config_lib.tiny(), [*RUN, *overrides])


def _digests(folder) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    digests = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digests[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return digests


def _restored(folder, scratch, config=None):
    """A Trainer holding the newest checkpoint of `folder`, restored into `scratch` (the run
    folder itself is only read)."""
    return Trainer(config or tiny_catch(), str(scratch), resume=True, restore_from=str(folder))


def _params(trainer):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(trainer.train_state)]


class _Kill(Exception):
    """Stands for the process dying mid-dream, after a phase's compute, before its checkpoint."""


def _eval_rows(folder):
    return [r.split(",") for r in open(os.path.join(folder, "eval.csv")).read().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The folder of the trained run (never written after this)."""
    out = str(tmp_path_factory.mktemp("dream") / "run")
    ledger = Trainer(tiny_catch(), out).run(progress=False)
    assert (ledger.env_steps, ledger.updates, ledger.dream) == (256, 160, 0)
    return out


@pytest.fixture(scope="module")
def dreamed(trained, tmp_path_factory):
    """(before, out): the trained run's file digests, and the folder of its dream of 96 updates
    (evaluated every 32) into a new folder, taken with the training loop's collection broken."""
    before = _digests(trained)
    out = str(tmp_path_factory.mktemp("dream") / "dreamed")

    def no_collection(self, key):
        raise AssertionError("the dream stepped the world")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_collect_iteration", no_collection)
        ledger, plan, done = dream.dream(trained, updates=96, out_dir=out, eval_every=32)
    assert (plan.phases, plan.passes, done) == (3, 3, 3)
    assert ledger.dream_updates == 96
    return before, out


def test_the_schedule_by_hand():
    # the phases start at 160, 192, 224 updates; refreshes every 20 fall inside each phase
    plan = dream.plan_dream(32, 20, 160, updates=96)
    assert (plan.pass_before, plan.updates, plan.passes) == ((True, True, True), 96, 3)
    # refreshes every 100: at 200 (in the phase 192-224) and 300 (past the dream)
    plan = dream.plan_dream(32, 100, 160, updates=128, eval_every=64)
    assert plan.pass_before == (True, False, True, False)
    assert plan.evaluate_after == (False, True, False, True)
    # --passes: each pass is followed by the 4 phases (128 updates) that hold a refresh
    plan = dream.plan_dream(32, 100, 160, passes=2)
    assert plan.pass_before == (True, False, False, False) * 2 and plan.updates == 256
    assert plan.evaluate_after == (False,) * 7 + (True,)
    assert dream.default_updates(160, 32) == 160 * dream.DEFAULT_UPDATES_FACTOR
    for kwargs, message in (
        ({"updates": 32, "passes": 1}, "not both"), ({}, "not both"),
        ({"updates": 0}, "--updates 0: must be a positive multiple"),
        ({"updates": 40}, "multiple of the run's updates per phase, 32 (e.g. 32 or 64)"),
        ({"passes": 0}, "--passes 0: must be at least 1"),
        ({"updates": 64, "eval_every": 48}, "--eval-every 48"),
    ):
        with pytest.raises(dream.DreamError, match=message.replace("(", r"\(").replace(")", r"\)")):
            dream.plan_dream(32, 20, 160, **kwargs)


def test_dream_takes_no_real_step_and_leaves_the_run_as_it_was(trained, dreamed, tmp_path):
    before, out = dreamed
    assert _digests(trained) == before  # every file of the source byte for byte
    source, result = _restored(trained, tmp_path / "a"), _restored(out, tmp_path / "b")
    # the stored experience and the world copies are as the run left them: only the targets
    # (policy, value, their versions) and the priorities changed
    rows, new_rows = source.replay.rows, result.replay.rows
    for name in ("observation", "action", "reward", "terminated", "truncated", "action_mask"):
        np.testing.assert_array_equal(getattr(new_rows, name), getattr(rows, name), err_msg=name)
    assert int(result.replay.num_rows) == int(source.replay.num_rows)
    assert not np.array_equal(new_rows.policy, rows.policy)
    assert [np.asarray(x).tobytes() for x in jax.tree.leaves(result.collector.state)] == [
        np.asarray(x).tobytes() for x in jax.tree.leaves(source.collector.state)]
    assert int(result.train_state.updates) == 160 + 96


def test_ledger_counts_by_hand(trained, dreamed):
    _, out = dreamed
    saved = json.load(open(os.path.join(trained, "ledger.json")))
    ledger = json.load(open(os.path.join(out, "ledger.json")))
    assert ledger["real"] == saved["real"] == {"env_steps": 256, "frames": 256, "episodes": 28}
    assert (ledger["updates"], ledger["dream_updates"]) == (160 + 96, 96)
    simulated, before = ledger["simulated"], saved["simulated"]
    assert simulated["search"] == before["search"] == 256 * S  # acting only, while training
    assert simulated["unroll"] == (160 + 96) * B * K
    assert simulated["reanalyse"] == (160 + 96) * REANALYSED * (K + 1) * S
    assert simulated["dream"] == 3 * PASS_COST  # a pass before each phase
    dreamed_steps = 96 * UPDATE_COST + 3 * PASS_COST
    assert simulated["total"] == before["total"] + dreamed_steps
    assert ledger["dream_ratio"] == simulated["total"] / 256 > saved["dream_ratio"]
    # eval.csv: the run's rows (their dream_updates 0), then one per 32 dreamed updates, each
    # after the pass and phase before it; a checkpoint with each, keyed env_steps + dream_updates
    rows = _eval_rows(out)
    assert rows[0][-1] == "dream_updates" and rows[1][:3] == _eval_rows(trained)[1][:3]
    assert [(int(r[0]), int(r[1]), int(r[2]), int(r[-1])) for r in rows[1:]] == [
        (256, 160 + u, before["total"] + u * UPDATE_COST + u // 32 * PASS_COST, u)
        for u in (0, 32, 64, 96)]
    checkpointer = Checkpointer(os.path.join(out, "checkpoints"), 1, read_only=True)
    assert checkpointer.latest_step() == 256 + 96
    checkpointer.close()


def test_a_stop_and_a_kill_lose_nothing_checkpointed(trained, dreamed, tmp_path):
    """In place, in three goes: stopped after its first phase (a checkpoint, no evaluation yet);
    continued for 64 updates and killed after the third phase's compute (its checkpoint and
    evaluation not written, its metrics row written); continued for the last 32. It ends equal
    to the uninterrupted dream into a new folder: parameters, eval.csv and metrics.jsonl."""
    _, straight = dreamed
    out = str(tmp_path / "run")
    shutil.copytree(trained, out)
    ledger, _, done = dream.dream(out, updates=96, eval_every=32, stop_flag=lambda: True)
    assert done == 1 and ledger.dream_updates == 32 and len(_eval_rows(out)) == 2
    calls = {"n": 0}

    def kill_at_second_phase():
        calls["n"] += 1
        if calls["n"] == 2:
            raise _Kill
        return False

    with pytest.raises(_Kill):
        dream.dream(out, updates=64, eval_every=32, stop_flag=kill_at_second_phase)
    # the evaluation the stop put off came first, at 32 dreamed updates
    assert [int(r[-1]) for r in _eval_rows(out)[1:]] == [0, 32, 64]
    assert json.loads(open(os.path.join(out, "metrics.jsonl")).readlines()[-1])[
        "dream_updates"] == 96  # written past the newest checkpoint, redone below
    ledger, _, _ = dream.dream(out, updates=32, eval_every=32)
    assert ledger.dream_updates == 96
    assert _params(_restored(out, tmp_path / "a")) == _params(_restored(straight, tmp_path / "b"))
    for name in ("eval.csv", "metrics.jsonl"):
        assert open(os.path.join(out, name), "rb").read() == open(
            os.path.join(straight, name), "rb").read(), name


def test_two_dreams_of_one_run_and_their_resumes_are_identical(trained, tmp_path):
    """Two dreams of one run, each then trained on for one iteration: bit-identical."""
    first, _, _ = dream.dream(trained, updates=32, out_dir=str(tmp_path / "a"))
    second, _, _ = dream.dream(trained, updates=32, out_dir=str(tmp_path / "b"))
    assert first.to_json() | {"wall_seconds": 0} == second.to_json() | {"wall_seconds": 0}
    assert _params(_restored(tmp_path / "a", tmp_path / "x")) == _params(
        _restored(tmp_path / "b", tmp_path / "y"))
    resumed = [Trainer(tiny_catch("run.real_steps=288"), str(tmp_path / name), resume=True)
               for name in ("a", "b")]
    for trainer in resumed:
        assert trainer.run(progress=False).env_steps == 288
    assert _params(resumed[0]) == _params(resumed[1])
    for name in ("eval.csv", "metrics.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_dream_through_the_cli_as_a_user_types_it(trained, tmp_path, capsys):
    """`dreamer dream --run RUN --out NEW --updates 32 --eval-every 32` with its progress lines
    (on by default): a line before dreaming and one after the 32 updates, then the summary; the
    trained run is left as it was."""
    before = _digests(trained)
    out = str(tmp_path / "cli")
    assert cli.main(["dream", "--run", trained, "--out", out, "--updates", "32",
                     "--eval-every", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the run ended with an evaluation at this point: shown, not repeated
    assert lines[0].startswith("dreamer dream: before dreaming (the run's last evaluation): "
                               "return ")
    assert "over 10 episodes (160 updates," in lines[0] and "256 real steps)" in lines[0]
    assert lines[1].startswith("dreamer dream: after 32 dreamed updates: return ")
    assert "(192 updates," in lines[1] and "256 real steps)" in lines[1]
    assert lines[2] == "dreamer: catch (seed 0) dreamed"
    assert _digests(trained) == before
    saved = json.load(open(os.path.join(out, "ledger.json")))
    assert (saved["real"]["env_steps"], saved["updates"], saved["dream_updates"]) == (256, 192, 32)


def test_eval_play_report_and_resume_accept_the_dreamed_run(dreamed, tmp_path):
    _, source = dreamed
    out = str(tmp_path / "run")
    shutil.copytree(source, out)
    # `dreamer eval` repeats the dream's last evaluation: same parameters, key and episodes
    assert cli.main(["eval", "--run", out]) == 0
    result = json.load(open(os.path.join(out, "eval.json")))
    assert (result["env_steps"], result["updates"], result["dream_updates"]) == (256, 256, 96)
    # abs 1e-6: eval.csv holds the float32 mean as text, eval.json the same mean as a float
    assert result["mean_return"] == pytest.approx(float(_eval_rows(out)[-1][3]), abs=1e-6)
    # `dreamer play --agent` loads the agent as eval does (catch has no text rendering to play)
    agent = agent_lib.load(out, worlds.make("catch"))
    assert (agent.ledger.updates, agent.ledger.dream_updates) == (256, 96)
    # the report shows the dream: return against dreamed model steps at 256 real steps
    assert cli.main(["report", out, "--out", str(tmp_path / "report")]) == 0
    report = open(tmp_path / "report" / "report.md").read()
    dreamed_steps = 96 * UPDATE_COST + 3 * PASS_COST
    assert f"| {out} | 256 | 96 | {dreamed_steps:,} |" in report
    assert (tmp_path / "report" / "catch-dream.png").stat().st_size > 10_000
    # training resumes from the dream's checkpoint: one more iteration (32 real steps, 32
    # updates), checkpointed at 288 + 96
    resumed = Trainer(tiny_catch("run.real_steps=288"), out, resume=True)
    assert resumed.ledger.dream_updates == 96 and int(resumed.train_state.updates) == 256
    ledger = resumed.run(progress=False)
    assert (ledger.env_steps, ledger.updates, ledger.dream_updates) == (288, 288, 96)
    assert resumed.checkpointer.latest_step() == 288 + 96
    assert [(int(r[0]), int(r[-1])) for r in _eval_rows(out)[1:]][-2:] == [(256, 96), (288, 96)]


def test_a_host_world_is_not_stepped(tmp_path, monkeypatch):
    """gym:CartPole-v1 saves its episodes in progress: the dream keeps them as they were."""
    cfg = config_lib.override(config_lib.tiny(), [
        "world=gym:CartPole-v1", "run.real_steps=128", "run.num_envs=2", "run.collect_steps=16",
        "train.learning_starts=64", "run.eval_episodes=0"])  # evaluation steps its own copies
    run = str(tmp_path / "run")
    Trainer(cfg, run).run(progress=False)
    steps = {"n": 0}
    probe = worlds.make("gym:CartPole-v1")
    host_class = type(probe)
    probe.close()
    step = host_class.step

    def counted(self, actions):
        steps["n"] += 1
        return step(self, actions)

    monkeypatch.setattr(host_class, "step", counted)
    ledger, plan, _ = dream.dream(run, updates=32, out_dir=str(tmp_path / "dreamed"))
    assert steps["n"] == 0 and ledger.env_steps == 128 and ledger.dream_updates == 32
    records = [Checkpointer(os.path.join(folder, "checkpoints"), 1, read_only=True)
               for folder in (run, str(tmp_path / "dreamed"))]
    saved, dreamed_record = (c.restore_record() for c in records)
    for c in records:
        c.close()
    assert _episodes(dreamed_record) == _episodes(saved)


def _episodes(record) -> list:
    """A host world's saved episodes in progress, as comparable values: each CartPole copy's
    physics state, elapsed steps and RNG state, the frames, the timestep to act on and the
    running returns and lengths."""
    host = pickle.loads(base64.b64decode(record["host_world"]))
    envs, frames = pickle.loads(host["world"])
    copies = [(np.asarray(env.unwrapped.state).tolist(), env._elapsed_steps,
               json.dumps(env.unwrapped.np_random.bit_generator.state, sort_keys=True, default=str))
              for env in envs]
    arrays = [np.asarray(x).tolist() for x in jax.tree.leaves(
        (host["timestep"], host["return"], host["length"]))]
    return [copies, frames, arrays]


@pytest.mark.parametrize("argv, message", [
    (["--updates", "32", "--passes", "1"], "give --updates N or --passes P (not both)"),
    (["--updates", "40"], "--updates 40: must be a positive multiple of the run's updates per "
                          "phase, 32"),
    (["--passes", "-1"], "--passes -1: must be at least 1"),
    (["--updates", "32", "--eval-every", "0"], "--eval-every 0: must be a positive multiple"),
    (["--out", "RUN"], "already holds a run; dream it in place with --run"),
])
def test_bad_requests_give_one_line_and_write_nothing(trained, argv, message, tmp_path, capsys):
    other = str(tmp_path / "other")
    shutil.copytree(trained, other)
    before = _digests(trained), _digests(other)
    argv = [other if a == "RUN" else a for a in argv]
    assert cli.main(["dream", "--run", trained, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and "\n" not in err and message in err
    assert (_digests(trained), _digests(other)) == before


def test_folders_that_cannot_be_dreamed_on(tmp_path, capsys):
    def error(*argv):
        assert cli.main(["dream", *argv]) == 2
        return capsys.readouterr().err.strip()

    assert "not a dreamer run folder" in error("--run", str(tmp_path))
    assert not os.listdir(tmp_path)
    stopped = tmp_path / "stopped"
    (stopped / "checkpoints").mkdir(parents=True)
    (stopped / "config.json").write_text(json.dumps(tiny_catch().to_dict()))
    assert "no finished checkpoint" in error("--run", str(stopped))
    short = str(tmp_path / "short")
    Trainer(tiny_catch("run.real_steps=32", "run.eval_episodes=0"),  # off: only its checkpoint
            short).run(progress=False)  # matters; the dreams above evaluate
    assert "32 real steps stored, fewer than train.learning_starts=100" in error(
        "--run", short, "--out", str(tmp_path / "new"))
    assert not os.path.exists(tmp_path / "new")
