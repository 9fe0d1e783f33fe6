"""End-to-end agent tests: learning on catch, exact ledger counts, compile-once, exact resume.

Every run here passes `progress=False`: the bar only draws to a terminal, and test_cli.py's
`default_train` runs `dreamer train` with it on."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from host_worlds import WrappedCartPole

import worlds
from dreamer import config as config_lib
from dreamer.train import Trainer


def tiny_catch(*overrides):
    return config_lib.override(config_lib.tiny(), ["world=catch", *overrides])


def random_policy_return(world_name: str, episodes: int, seed: int = 0) -> float:
    """Mean return of a uniform-random policy over `episodes` first episodes."""
    world = worlds.make(world_name)
    keys = jax.random.split(jax.random.key(seed), episodes)
    states, ts = jax.vmap(world.reset)(keys)
    step = jax.jit(jax.vmap(world.step))
    returns = np.zeros(episodes)
    finished = np.zeros(episodes, bool)
    key = jax.random.key(seed + 1)
    for _ in range(world.spec.max_episode_steps):
        key, a_key, s_key = jax.random.split(key, 3)
        actions = jax.random.randint(a_key, (episodes,), 0, world.spec.num_actions)
        states, ts = step(states, actions, jax.random.split(s_key, episodes))
        returns += np.where(finished, 0.0, np.asarray(ts.reward))
        finished |= np.asarray(ts.terminated | ts.truncated)
        if finished.all():
            break
    return float(returns.mean())


# slow (about 150 s on a CPU core, the 2,880 updates rather than the compiles): the default
# suite proves learning once, with MuZero at the tiny config, in
# test_text_worlds.py::test_tiny_agent_beats_random_play_on_a_small_coin_map (Gumbel on this catch
# config is slow too: test_presets.py::test_tiny_catch_learns_with_gumbel_search); the run's other
# checks (compile once, the evaluation schedule) are test_ledger_counts_are_exact's and
# test_stop_and_resume_is_bit_identical's
@pytest.mark.slow
@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_tiny_catch_learns_beyond_random(tmp_path, limit_traces):
    limit_traces()
    cfg = tiny_catch("seed=0", "run.eval_episodes=20")
    trainer = Trainer(cfg, str(tmp_path))
    ledger = trainer.run(progress=False)
    random_return = random_policy_return("catch", 200)
    # catch returns +1 for a catch and -1 for a miss: a random paddle catches about 1 ball in 5
    # (return near -0.6), and 0.6 is 16 catches out of the 20 evaluation episodes
    assert random_return < -0.4
    assert ledger.eval_mean_return >= 0.6, (ledger.eval_mean_return, random_return)
    # the jitted collector and train chunk compiled exactly once over the whole run: a second
    # trace would have failed it (`limit_traces`)
    saved = json.load(open(tmp_path / "ledger.json"))
    assert saved["eval"]["mean_return"] == ledger.eval_mean_return
    # 32 real steps an iteration, the last (of 6 steps a copy) only the 24 left of the 3000;
    # run.eval_interval=1000: evaluations after the iterations that pass 1000 and 2000, and at
    # the end, 3000 (no second final row)
    rows = (tmp_path / "eval.csv").read_text().splitlines()
    assert rows[0] == "env_steps,updates,simulated,mean_return,std_return,episodes"
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1024, 2016, 3000]
    assert rows[-1].endswith(",20")  # 20 evaluation episodes each


@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_ledger_counts_are_exact(tmp_path, limit_traces):
    limit_traces()
    # N=4 copies x 8 steps = 32 real steps per iteration; 256 steps = 8 iterations.
    # Training starts once 100 steps are collected: after iterations 4..8 (5 iterations), each
    # earning 1 x 32 = 32 updates (one chunk of 32): 160 updates.
    # Evaluation is on (10 episodes every 64 real steps): the ledger does not count it, so the
    # counts are the same hand computation as without it.
    cfg = tiny_catch("run.real_steps=256", "train.learning_starts=100", "run.eval_interval=64",
                     "run.eval_episodes=10")
    trainer = Trainer(cfg, str(tmp_path))
    ledger = trainer.run(progress=False)
    # the jitted collector and train chunk compiled exactly once over the 8 collections, 5
    # learner phases and 4 evaluations: a second trace would have failed the run (`limit_traces`)
    S, B, K = 8, 32, 3
    reanalysed = 16  # round(0.5 x 32)

    def simulated(steps, updates):  # search while acting + training unroll + reanalysis search
        return steps * S + updates * B * K + updates * reanalysed * (K + 1) * S

    assert ledger.env_steps == 256
    assert ledger.frames == 256
    assert ledger.updates == 160
    assert ledger.search == 256 * S
    assert ledger.unroll == 160 * B * K
    assert ledger.reanalyse == 160 * reanalysed * (K + 1) * S
    data = json.load(open(tmp_path / "ledger.json"))
    assert data["simulated"]["total"] == 256 * S + 160 * B * K + 160 * reanalysed * (K + 1) * S
    assert data["dream_ratio"] == data["simulated"]["total"] / 256
    # catch episodes last 9 steps: each copy finishes 64 // 9 = 7 training episodes; the 4 x 10
    # evaluation episodes are not counted
    assert data["real"]["episodes"] == ledger.episodes == 4 * 7
    assert data["eval"]["episodes"] == 10
    # each evaluation row holds the counts at its step: no update before step 128, then 32 an
    # iteration
    rows = [r.split(",") for r in (tmp_path / "eval.csv").read_text().splitlines()[1:]]
    expected = [(64, 0), (128, 32), (192, 96), (256, 160)]
    assert [(int(r[0]), int(r[1]), int(r[2]), int(r[5])) for r in rows] == [
        (steps, updates, simulated(steps, updates), 10) for steps, updates in expected]


def _params_bytes(trainer):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(trainer.train_state)]


class _Crash(Exception):
    """Stands for the process dying at the end of an iteration, before any checkpoint of it."""


def _eval_steps(out):
    return [int(r.split(",")[0]) for r in open(os.path.join(out, "eval.csv")).readlines()[1:]]


@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_stop_and_resume_is_bit_identical(tmp_path):
    """Evaluation on, 32 real steps an iteration: evaluations at 96 and 160 (every 80 steps) and
    a final one at 192; checkpoints every 64 steps. The run stops at iteration 3, before its
    evaluation at 96 (a checkpoint at 96 with that evaluation still due), resumes and makes it
    first, crashes at iteration 6 after the row at 160 (the newest checkpoint is 128) and resumes
    again: the row at 160 is cut back and redone. It ends equal to the uninterrupted run,
    eval.csv byte for byte."""
    overrides = ["run.real_steps=192", "train.learning_starts=32", "run.eval_interval=80",
                 "run.eval_episodes=10", "run.checkpoint_interval=64"]
    straight = Trainer(tiny_catch(*overrides), str(tmp_path / "a"))
    straight.run(progress=False)
    assert _eval_steps(str(tmp_path / "a")) == [96, 160, 192]

    out = str(tmp_path / "b")
    calls = {"n": 0}

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] == 3

    first = Trainer(tiny_catch(*overrides), out)
    stopped = first.run(progress=False, stop_flag=stop_after_three)
    assert stopped.env_steps == 96 and stopped.updates > 0  # stopped between checkpoints
    # a stop comes before the step's evaluation (minutes for Atari on a CPU) and is not the end:
    # no row yet, and no final evaluation
    assert _eval_steps(out) == []
    resumed = Trainer(tiny_catch(*overrides), out, resume=True)
    assert resumed.ledger.env_steps == 96 and resumed.loop.next_eval == 80  # still due

    def crash_at_192():
        if resumed.ledger.env_steps == 192:
            raise _Crash

    with pytest.raises(_Crash):
        resumed.run(progress=False, stop_flag=crash_at_192)
    assert resumed.checkpointer.latest_step() == 128
    # the evaluation schedule was restored (restarted, it would have evaluated at 128 >= 80),
    # and the row at 160 is past the newest checkpoint
    assert _eval_steps(out) == [96, 160]
    resumed = Trainer(tiny_catch(*overrides), out, resume=True)
    assert resumed.ledger.env_steps == 128 and _eval_steps(out) == [96]  # cut back to it
    final = resumed.run(progress=False)
    assert final.env_steps == straight.ledger.env_steps
    assert final.updates == straight.ledger.updates
    assert final.simulated == straight.ledger.simulated
    assert final.eval_mean_return == straight.ledger.eval_mean_return
    assert _params_bytes(resumed) == _params_bytes(straight)
    for name in ("eval.csv", "metrics.jsonl"):
        assert open(os.path.join(out, name), "rb").read() == open(
            tmp_path / "a" / name, "rb").read(), name
    # a resumed run lowers to the same programs as a fresh one, so it reuses their compiled
    # executables (the persistent cache) instead of compiling them again
    resumed_hlo, straight_hlo = (
        t._train_many.lower(t.train_state, t.replay, jax.random.key(0), jnp.float32(1.0)).as_text()
        for t in (resumed, straight))
    assert resumed_hlo == straight_hlo


@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_resume_refuses_a_different_network(tmp_path):
    """A resume refuses a changed network; a finished run resumed with the same budget does
    nothing, and with a larger one (the README's `--resume --real-steps`) trains on to it."""
    from dreamer.checkpoint import CheckpointError

    # 32 real steps an iteration, learning from the first: 32 updates an iteration. Evaluation
    # only at the end of each run (its interval is past the budget).
    overrides = ["train.learning_starts=32", "run.eval_interval=1000", "run.eval_episodes=10"]
    first = Trainer(tiny_catch("run.real_steps=64", *overrides), str(tmp_path)).run(progress=False)
    assert (first.env_steps, first.updates) == (64, 64)
    with pytest.raises(CheckpointError, match="model.hidden"):
        Trainer(tiny_catch("run.real_steps=64", "model.hidden=48"), str(tmp_path), resume=True)
    # the same budget: nothing to do, and the final evaluation is not repeated (the last
    # evaluation's step is restored)
    again = Trainer(tiny_catch("run.real_steps=64", *overrides), str(tmp_path), resume=True)
    assert again.run(progress=False).to_json()["updates"] == 64
    assert _eval_steps(str(tmp_path)) == [64]
    # a safe field may change: a larger budget extends the finished run by 2 iterations
    extended = Trainer(tiny_catch("run.real_steps=128", *overrides), str(tmp_path), resume=True)
    ledger = extended.run(progress=False)
    S, B, K, reanalysed = 8, 32, 3, 16
    assert (ledger.env_steps, ledger.frames, ledger.updates) == (128, 128, 128)
    assert ledger.search == 128 * S
    assert ledger.simulated == 128 * S + 128 * B * K + 128 * reanalysed * (K + 1) * S
    saved = json.load(open(tmp_path / "ledger.json"))
    assert (saved["real"]["env_steps"], saved["updates"]) == (128, 128)
    assert saved["simulated"]["total"] == ledger.simulated
    assert saved["real"]["episodes"] == 4 * (32 // 9)  # 9-step catch episodes, 32 steps a copy
    assert _eval_steps(str(tmp_path)) == [64, 128]  # each run's final evaluation
    assert extended.checkpointer.latest_step() == 128


@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_the_real_budget_is_a_hard_cap(tmp_path, limit_traces):
    """A budget that is not a whole number of rounds (but is of copies) collects exactly that many
    real steps: the last round steps each copy only for what is left. Stopped before or after the
    short round, the resumed run equals the uninterrupted one bit for bit; resumed with a larger
    budget, it goes on in full rounds and meets the new budget exactly too."""
    # N=4 copies x 8 steps = 32 real steps a round; 80 = 32 + 32 + a short round of 4 steps a
    # copy (16 real steps). Learning from 32: 32 updates (one phase) after each full round; the
    # short round earns 16 credit, less than a phase, carried over.
    limit_traces(collect=2)  # the full round's length and the short round's
    overrides = ["train.learning_starts=32", "run.eval_interval=64", "run.eval_episodes=10",
                 "run.checkpoint_interval=32"]
    S, B, K, reanalysed = 8, 32, 3, 16
    straight = Trainer(tiny_catch("run.real_steps=80", *overrides), str(tmp_path / "a"))
    ledger = straight.run(progress=False)
    assert (ledger.env_steps, ledger.frames, ledger.updates) == (80, 80, 64)
    assert straight.loop.update_credit == 16
    assert ledger.search == 80 * S  # the short round searches from its own 16 steps only
    assert ledger.simulated == 80 * S + 64 * B * K + 64 * reanalysed * (K + 1) * S
    assert ledger.episodes == 4 * (20 // 9)  # 9-step catch episodes, 20 steps a copy
    assert int(straight.replay.num_rows) == 20  # rows a stream
    assert _eval_steps(str(tmp_path / "a")) == [64, 80]
    assert straight.checkpointer.latest_step() == 80
    # the short program is built beside the full round's and shared by later runs; each length
    # is traced once over all the runs below (`limit_traces`)
    assert straight.programs.collect_of_length(4) is not straight.programs.collect

    for stop_at in (64, 80):  # before the short round, and after it (its evaluation still due)
        out = str(tmp_path / f"stop{stop_at}")
        first = Trainer(tiny_catch("run.real_steps=80", *overrides), out)
        first.run(progress=False, stop_flag=lambda t=first, s=stop_at: t.ledger.env_steps >= s)
        assert first.ledger.env_steps == stop_at
        resumed = Trainer(tiny_catch("run.real_steps=80", *overrides), out, resume=True)
        assert resumed.programs is straight.programs
        final = resumed.run(progress=False)
        assert final.to_json()["real"] == ledger.to_json()["real"]
        assert (final.updates, final.simulated) == (ledger.updates, ledger.simulated)
        assert final.eval_mean_return == ledger.eval_mean_return
        assert _params_bytes(resumed) == _params_bytes(straight)
        for name in ("eval.csv", "metrics.jsonl"):
            assert open(os.path.join(out, name), "rb").read() == open(
                tmp_path / "a" / name, "rb").read(), (stop_at, name)

    # --resume --real-steps 144: two full rounds (112, 144), each with one phase (16 + 32 = 48
    # credit: 32 updates, 16 carried); 176 + 8 = 184 would end on a short round of 2 steps a copy
    extended = Trainer(tiny_catch("run.real_steps=144", *overrides), str(tmp_path / "a"),
                       resume=True)
    ledger = extended.run(progress=False)
    assert (ledger.env_steps, ledger.updates, ledger.search) == (144, 128, 144 * S)
    assert _eval_steps(str(tmp_path / "a")) == [64, 80, 144]
    extended = Trainer(tiny_catch("run.real_steps=184", *overrides), str(tmp_path / "a"),
                       resume=True)
    ledger = extended.run(progress=False)
    assert (ledger.env_steps, ledger.updates, ledger.search) == (184, 160, 184 * S)
    assert int(extended.replay.num_rows) == 46


@pytest.mark.parametrize("real_steps, fix", [(81, "use 80 or 84"), (3, "use 4")])
def test_a_budget_off_the_copies_is_refused(tmp_path, real_steps, fix):
    from dreamer.config import ConfigError

    with pytest.raises(ConfigError, match=f"run.real_steps={real_steps} is not a multiple of "
                                          f"run.num_envs=4.*: {fix}$"):
        Trainer(tiny_catch(f"run.real_steps={real_steps}"), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def tiny_cartpole(*overrides):
    return config_lib.override(
        config_lib.tiny(),
        ["world=gym:CartPole-v1", "run.real_steps=128", "run.num_envs=2", "run.collect_steps=16",
         "train.learning_starts=64", *overrides],
    )


def _run_state(trainer):
    state = (trainer.train_state, trainer.replay, trainer.collector.timestep)
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(state)]


class UnsavableCartPole(WrappedCartPole):
    """CartPole whose state cannot be saved."""


@pytest.mark.xdist_group("tiny_cartpole")
def test_host_world_stop_and_resume_continues_the_episodes(tmp_path):
    """A gymnasium world's episodes in progress are in the checkpoint: a run stopped and resumed
    mid-episode equals the uninterrupted run bit for bit, episode count included. A world that
    cannot be saved restarts its episodes on resume, with the same step and update counts."""
    # Evaluation off to save time (each one plays CartPole episodes step by step on the host):
    # test_host_world_meets_the_real_budget_exactly resumes a host world with evaluation on.
    cfg = tiny_cartpole("run.eval_episodes=0",  # off: saves host episodes; covered on above
                        "run.checkpoint_interval=1000")
    straight = Trainer(cfg, str(tmp_path / "straight"))
    expected = straight.run(progress=False).to_json()
    expected_state = _run_state(straight)

    out = str(tmp_path / "stopped")
    first = Trainer(cfg, out)
    first.run(progress=False, stop_flag=lambda: first.ledger.env_steps >= 64)
    assert first.collector.returns.any()  # stopped mid-episode
    resumed = Trainer(cfg, out, resume=True)
    ledger = resumed.run(progress=False).to_json()
    for key in ("real", "simulated", "updates"):
        assert ledger[key] == expected[key], key
    assert _run_state(resumed) == expected_state

    worlds.register("test/unsavable-cartpole", UnsavableCartPole, kind="host")
    cfg = tiny_cartpole("world=test/unsavable-cartpole", "run.eval_episodes=0")  # as above
    out = str(tmp_path / "unsavable")
    first = Trainer(cfg, out)
    assert first.programs is straight.programs  # a host world's programs depend on its spec alone
    first.run(progress=False, stop_flag=lambda: first.ledger.env_steps >= 64)
    newest = int(first.replay.num_rows - 1) % first.replay.capacity
    saved_truncated = np.asarray(first.replay.rows.truncated[newest])
    saved_terminated = np.asarray(first.replay.rows.terminated[newest])
    assert not (saved_truncated | saved_terminated).all()  # a stream was mid-episode at the stop
    resumed = Trainer(cfg, out, resume=True)
    assert int(resumed.replay.num_rows - 1) % resumed.replay.capacity == newest
    truncated = np.asarray(resumed.replay.rows.truncated[newest])
    terminated = np.asarray(resumed.replay.rows.terminated[newest])
    # each stream's last saved episode ends where the run stopped: the restore cut the streams
    # that were mid-episode (as a time limit) and left the terminated ones as they were
    assert (truncated | terminated).all()
    np.testing.assert_array_equal(terminated, saved_terminated)
    np.testing.assert_array_equal(truncated, saved_truncated | ~saved_terminated)
    ledger = resumed.run(progress=False).to_json()
    assert ledger["real"]["env_steps"] == 128 and ledger["updates"] == expected["updates"]


@pytest.mark.xdist_group("tiny_cartpole")
def test_host_world_meets_the_real_budget_exactly(tmp_path, monkeypatch):
    """The host loop's last round steps each copy only for what is left of the budget; a run
    stopped before or after that short round resumes bit for bit, evaluation included: the
    resume cuts eval.csv back to its checkpoint, and a run stopped at its last step still ends
    with its final evaluation."""
    import dataclasses

    from worlds import registry

    # N=2 copies x 16 steps = 32 real steps a round; 80 = 32 + 32 + 8 steps a copy. Learning
    # from 64: one phase of 32 updates after the second round; the short round's 16 credit is
    # less than a phase. Evaluation every round, on 2 held-out episodes cut at 7 steps (the
    # family's evaluation options, patched to keep it short).
    monkeypatch.setitem(registry._PREFIXES, "gym:", dataclasses.replace(
        registry._PREFIXES["gym:"], eval_options={"max_episode_steps": 7}))
    cfg = tiny_cartpole("run.real_steps=80", "run.eval_episodes=2", "run.eval_interval=32",
                        "run.checkpoint_interval=32")
    straight = Trainer(cfg, str(tmp_path / "straight"))
    expected = straight.run(progress=False).to_json()
    expected_eval = open(tmp_path / "straight" / "eval.csv", "rb").read()
    assert [int(r.split(b",")[0]) for r in expected_eval.splitlines()[1:]] == [32, 64, 80]
    assert (expected["real"]["env_steps"], expected["real"]["frames"]) == (80, 80)
    assert expected["updates"] == 32 and straight.loop.update_credit == 16
    S, B, K, reanalysed = 8, 32, 3, 16
    assert expected["simulated"]["search"] == 80 * S
    assert expected["simulated"]["total"] == 80 * S + 32 * B * K + 32 * reanalysed * (K + 1) * S
    assert int(straight.replay.num_rows) == 40  # rows a stream
    expected_state = _run_state(straight)
    for stop_at in (64, 80):
        out = str(tmp_path / f"stop{stop_at}")
        first = Trainer(cfg, out)
        first.run(progress=False, stop_flag=lambda t=first, s=stop_at: t.ledger.env_steps >= s)
        assert first.ledger.env_steps == stop_at
        resumed = Trainer(cfg, out, resume=True)
        ledger = resumed.run(progress=False).to_json()
        for key in ("real", "simulated", "updates", "eval"):
            assert ledger[key] == expected[key], (stop_at, key)
        assert _run_state(resumed) == expected_state
        assert open(os.path.join(out, "eval.csv"), "rb").read() == expected_eval, stop_at


@pytest.mark.xdist_group("tiny_cartpole")
def test_host_world_training_path(tmp_path, monkeypatch):
    """A gymnasium env through the host loop: collection, learning, evaluation, ledger; the
    evaluation world is built with the world's evaluation options (`worlds.eval_options`)."""
    import dataclasses

    import worlds
    from dreamer import train as train_lib
    from worlds import registry

    # held-out episodes: the family's evaluation copies are cut at 7 steps
    monkeypatch.setitem(registry._PREFIXES, "gym:", dataclasses.replace(
        registry._PREFIXES["gym:"], eval_options={"max_episode_steps": 7}))
    cfg = tiny_cartpole("run.eval_episodes=2", "run.eval_interval=100000")
    trainer = Trainer(cfg, str(tmp_path))
    assert not trainer.world.is_jax
    made, make = [], worlds.make
    monkeypatch.setattr(train_lib.worlds, "make",
                        lambda name, **options: made.append(options) or make(name, **options))
    ledger = trainer.run(progress=False)
    assert ledger.env_steps == 128 and ledger.frames == 128
    assert ledger.updates == 3 * 32  # iterations 2..4 of 32 steps, 32 updates each
    assert made == [{"num_envs": 2, "evaluation": True}]
    # CartPole pays 1 a step, and the held-out episodes last 1 to 7 steps
    assert ledger.eval_episodes == 2 and 1 <= ledger.eval_mean_return <= 7


def test_twx_evaluates_on_the_test_fold():
    import worlds

    assert worlds.eval_options("twx/coin") == {"fold": "test"}  # read without starting a JVM


def test_a_run_records_the_protocol_of_its_training_and_evaluation_copies():
    """`train.world_settings`, which the trainer writes into ledger.json: Atari's training
    copies lose a life and clip rewards, its evaluation copies play whole games with raw
    scores; a user's option reaches both; a continual run records each world of its sequence.
    The ledger keeps it through its JSON round trip (a checkpoint's record)."""
    from dreamer.ledger import SampleLedger
    from dreamer.train import world_settings

    cfg = config_lib.override(config_lib.atari100k(),
                              ["world=atari/pong", "world_options.noop_max=5"])
    (name, recorded), = world_settings(cfg).items()
    assert name == "atari/pong"
    assert recorded["evaluation"] == worlds.settings("atari/pong", evaluation=True, noop_max=5)
    assert recorded["evaluation"]["noop_max"] == recorded["training"]["noop_max"] == 5
    assert not recorded["evaluation"]["terminal_on_life_loss"]
    assert not recorded["evaluation"]["reward_clip"]
    assert recorded["training"]["terminal_on_life_loss"] and recorded["training"]["reward_clip"]
    assert recorded["evaluation"]["repeat_action_probability"] == 0.0
    assert recorded["evaluation"]["max_episode_steps"] == 27_000
    sequence = config_lib.override(config_lib.preset("minatar"), [
        "run.worlds=minatar/breakout,minatar/freeway", "run.real_steps_each=1024",
        "world_options.sticky_action_prob=0.1"])
    settings = world_settings(sequence)
    assert list(settings) == ["minatar/breakout", "minatar/freeway"]
    assert all(s[copies]["sticky_action_prob"] == 0.1 for s in settings.values()
               for copies in ("training", "evaluation"))
    ledger = SampleLedger(world="atari/pong", seed=0, config={}, world_settings=world_settings(cfg))
    assert SampleLedger.from_json(json.loads(json.dumps(ledger.to_json()))) == ledger


def test_the_atari100k_preset_trains_through_the_trainer_with_exact_counts(tmp_path):
    """The `atari100k` preset's path through `Trainer` on atari/pong: the ALE host collector, 4
    training copies with life loss and reward clipping, augmentation, per-update reanalysis with
    the tree-wide Q normalisation, SGD and EfficientZero's loss scale; the network and search cut
    to toy sizes (a preset update takes minutes on a CPU), so it asserts exact counts, not
    learning. N = 4 copies x 1 step = 4 real steps an iteration; 48 steps = 12 iterations; from
    the iteration that reaches learning_starts=24 on (7 of them), each earns 1.2 x 4 = 4.8
    updates of credit, spent in whole phases of round(4.8) = 5: 33.6 earned, 6 phases, 30
    updates."""
    from dreamer.collect import make_eval_world

    cfg = config_lib.override(config_lib.atari100k(), [
        "world=atari/pong", "run.real_steps=48", "train.learning_starts=24",
        "run.eval_interval=48", "run.eval_episodes=1", "run.checkpoint_interval=48",
        "train.batch_size=4", "search.num_simulations=2", "model.channels=8",
        "model.lstm_hidden=16", "model.projection_dim=32", "model.value_support=20",
        "model.reward_support=20", "model.head_hidden=8"])
    assert (cfg.train.augment_shift, cfg.search.q_normalisation) == (4, "tree")  # the preset's
    trainer = Trainer(cfg, str(tmp_path))
    assert trainer.world.reward_clip and trainer.world.spec.reward_range == (-1.0, 1.0)
    ledger = trainer.run(progress=False)  # closes the world
    evaluation = make_eval_world(cfg, 1)
    assert not evaluation.reward_clip  # evaluation copies score raw points
    evaluation.close()
    S, B, K = 2, 4, 5
    reanalysed = 4  # round(0.99 x 4) of each batch, each position and its K unrolled ones
    assert (ledger.env_steps, ledger.updates) == (48, 30)
    assert ledger.search == 48 * S and ledger.unroll == 30 * B * K
    assert ledger.reanalyse == 30 * reanalysed * (K + 1) * S
    assert ledger.frames >= 4 * 48  # frame skip 4, and up to 30 no-op frames at each reset
    data = json.load(open(tmp_path / "ledger.json"))
    assert data["world_settings"]["atari/pong"]["training"]["terminal_on_life_loss"]
    assert not data["world_settings"]["atari/pong"]["evaluation"]["terminal_on_life_loss"]
    # one greedy game of Pong, scored in raw points: the toy agent loses it, 21 points at most
    rows = [r.split(",") for r in (tmp_path / "eval.csv").read_text().splitlines()[1:]]
    assert [(int(r[0]), int(r[1]), int(r[5])) for r in rows] == [(48, 30, 1)]
    assert -21.0 <= float(rows[0][3]) < 0


def test_atari_network_downsamples_to_6x6():
    from dreamer.networks import WorldModel

    cfg = config_lib.atari100k()
    model = WorldModel(config=cfg.model, num_actions=6, image=True)
    obs = np.zeros((2, 96, 96, 4), np.uint8)
    # the representation alone is initialised and applied, in one jitted program (the rest of
    # the network is not needed to see the encoder's output)

    def represent(key, o):
        params = model.init(key, o, method=WorldModel.represent)
        return model.apply(params, o, method=WorldModel.represent)

    latent = jax.jit(represent)(jax.random.key(0), obs)
    assert latent.shape == (2, 6, 6, 64)
    # min-max normalised; 1e-6: XLA may divide by multiplying with a float32 reciprocal, which
    # can land an ulp or two (1.2e-7 each) above 1
    assert float(latent.min()) >= 0.0 and float(latent.max()) <= 1.0 + 1e-6


def test_advantage_weighted_policy_targets():
    from dreamer.learner import advantage_weighted_policy

    action = np.array([[0, 2]])
    returns = np.array([[2.0, 0.0]])
    baseline = np.array([[1.0, 1.0]])
    valid = np.array([[True, True]])
    target = np.asarray(advantage_weighted_policy(action, 3, returns, baseline, valid))
    # advantages +1 and -1: batch std 1, weights e^1 and e^-1 on the taken actions (float32:
    # XLA's exp is within a few ulps of 1.2e-7 each, hence rtol=1e-6)
    np.testing.assert_allclose(target, [[[np.e, 0, 0], [0, 0, np.exp(-1.0)]]], rtol=1e-6)
    clipped = np.asarray(advantage_weighted_policy(action, 3, returns * 100, baseline, valid,
                                                   max_weight=5.0))
    assert clipped[0, 0, 0] == 5.0  # min(e^100, 5): the clip itself, exactly
    invalid = np.asarray(advantage_weighted_policy(action, 3, returns, baseline,
                                                   np.array([[True, False]])))
    assert invalid[0, 1].sum() == 0.0


@pytest.mark.xdist_group("tiny_coin")  # reads the folder of the text/coin learning run
def test_token_world_run_keeps_its_vocabulary(tiny_coin_run):
    """A token world's run folder keeps the vocabulary and command names it was trained with
    (written by the Trainer: the conftest's tiny_coin_run is `dreamer train` on text/coin)."""
    from conftest import TINY_COIN_OPTIONS

    world = worlds.make("text/coin", **TINY_COIN_OPTIONS)
    saved = json.load(open(os.path.join(tiny_coin_run, "vocabulary.json")))
    assert saved["vocabulary"] == list(world.vocabulary)
    assert saved["actions"] == list(world.spec.action_names)


def test_grouped_reanalysis_prepares_each_batch_as_alone():
    """train.reanalyse_batches=G samples G batches with the same priorities and reanalyses them in
    one search: each batch is what a lone update with its key samples, its first R rows (and only
    those) get fresh search policies, and the other targets match a lone update's."""

    from dreamer import learner
    from dreamer import replay as replay_lib
    from dreamer.bench import _random_rows
    from dreamer.networks import make_model

    G = 3
    cfg = tiny_catch("train.batch_size=8", "train.reanalyse_fraction=0.5",
                     f"train.reanalyse_batches={G}", "run.num_envs=3", "run.collect_steps=4",
                     "train.train_ratio=0.25")
    spec = worlds.make("catch").spec
    model = make_model(cfg.model, spec)
    key = jax.random.key(0)
    rows = _random_rows(key, 48, 2, spec)
    rstate = replay_lib.add(replay_lib.init(rows, 48), rows)
    ts = learner.init_train_state(model, cfg, key, np.asarray(rows.observation[0, 0]))
    parts = learner.make_train_parts(model, cfg)
    age = jnp.float32(1e9)
    keys = jax.random.split(jax.random.key(1), G)
    prepare = jax.jit(parts.prepare)
    windows, targets = prepare(ts, rstate, keys, age)
    K, R = cfg.train.unroll_steps, learner.reanalysed_count(cfg)
    for g in range(G):
        alone_w, alone_t = prepare(ts, rstate, keys[g:g + 1], age)
        for a, b in zip(jax.tree.leaves(alone_w), jax.tree.leaves(windows), strict=True):
            np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[g]))
        value, valid, prefix, policy = (np.asarray(x[g]) for x in targets[:4])
        a_value, a_valid, a_prefix, a_policy = (np.asarray(x[0]) for x in alone_t[:4])
        np.testing.assert_array_equal(valid, a_valid)
        # the tolerances: G batches in one program compile to other fusions and matmul tilings
        # than one batch, so float32 sums may round differently (a few ulps; the value targets,
        # n-step sums of rewards in [0, 1] plus a bootstrap, are the larger numbers: atol 1e-5)
        np.testing.assert_allclose(prefix, a_prefix, atol=1e-6)
        np.testing.assert_allclose(value, a_value, atol=1e-5)  # bootstrap: network, not search
        stored = np.asarray(windows.rows.policy[g, :, : K + 1])
        np.testing.assert_array_equal(policy[R:], stored[R:])
        np.testing.assert_array_equal(a_policy[R:], stored[R:])
        np.testing.assert_allclose(policy[:R].sum(-1), 1.0, atol=1e-5)  # float32 normalising
        # the stored policies are uniform (1/3 each): a fresh search's differ by far more than
        # any rounding
        assert np.abs(policy[:R] - stored[:R]).max() > 0.1
    # (a grouped train_many runs in `dreamer bench gpu --quick`: the atari preset groups 5)
    with pytest.raises(ValueError, match="reanalyse_batches=3 must divide"):
        learner.make_train_many(model, cfg, 4)
    with pytest.raises(config_lib.ConfigError, match="reanalyse_batches=3 must divide"):
        config_lib.override(cfg, ["train.train_ratio=0.333"])
