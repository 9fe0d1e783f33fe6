"""The buffer-wide reanalysis pass (`dreamer.reanalyse`): its targets, its order, its ledger
counts, one compile, and an exact resume with it on."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer import config as config_lib
from dreamer import reanalyse
from dreamer.learner import target_version
from dreamer.search import make_search_for
from dreamer.train import Trainer

# one worker runs the tiny catch runs, so they reuse each other's compiled programs
pytestmark = pytest.mark.xdist_group("tiny_catch")

PASS = ["train.reanalyse_pass_interval=32", "train.reanalyse_pass_chunk=64"]


def tiny_catch(*overrides):
    return config_lib.override(config_lib.tiny(), ["world=catch", *PASS, *overrides])


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A tiny catch trainer after 64 real steps (16 rows in each of 4 streams) and 32 updates,
    without a pass (none is on)."""
    cfg = tiny_catch("run.real_steps=64", "train.learning_starts=32",
                     "run.eval_episodes=0",  # off: a fixture of replay rows, nothing evaluated
                     "train.reanalyse_pass_interval=0")
    trainer = Trainer(cfg, str(tmp_path_factory.mktemp("collected")))
    trainer.run(progress=False)
    assert trainer.ledger.dream == 0 and trainer.ledger.updates == 64
    return trainer


def test_pass_targets_are_the_reanalysis_search_of_the_target_network(collected):
    """Each search call of the pass is the search per-update reanalysis runs (the run's search,
    `make_search_for`, with the target network, root noise on) on the same observations, masks
    and key: bit for bit."""
    t = collected
    cfg, replay = t.config, t.replay
    order = np.asarray(reanalyse.pass_order(replay, "newest"))
    key = jax.random.key(7)
    before = jax.tree.map(np.asarray, replay)
    out = jax.jit(reanalyse.make_reanalyse_pass(t.model, cfg))(
        t.train_state, replay, key, jnp.int32(1))
    streams, chunk = replay.num_streams, cfg.train.reanalyse_pass_chunk
    slot, stream = order[:chunk] // streams, order[:chunk] % streams
    expected = jax.jit(make_search_for(t.model, cfg))(
        t.train_state.target_params, reanalyse.chunk_key(key, 0),
        before.rows.observation[slot, stream], before.rows.action_mask[slot, stream])
    policy, value = np.asarray(out.rows.policy), np.asarray(out.rows.value)
    np.testing.assert_array_equal(policy[slot, stream], np.asarray(expected.policy))
    np.testing.assert_array_equal(value[slot, stream], np.asarray(expected.value))
    version = np.asarray(out.target_version)
    assert (version[slot, stream] == int(target_version(t.train_state.updates, cfg))).all()
    assert int(target_version(t.train_state.updates, cfg)) == 60  # refreshed every 20 updates
    # the newest rows first (16 rows of 4 streams stored; one chunk of 64 covers them all), and
    # nothing else changed
    assert sorted(zip(slot.tolist(), stream.tolist(), strict=True)) == [(r, s) for r in range(16)
                                                            for s in range(4)]
    untouched = np.ones(version.shape, bool)
    untouched[slot, stream] = False
    assert (version[untouched] == -1).all()
    np.testing.assert_array_equal(policy[untouched], before.rows.policy[untouched])
    assert not np.array_equal(policy[slot, stream], before.rows.policy[slot, stream])


def test_pass_chunks_each_search_their_rows_with_their_own_key(collected):
    """A pass of several chunks (16 roots each, 4 calls over the 64 stored rows) is one fori_loop
    over chunks: chunk i searches the rows order[16 i : 16 (i + 1)] with `chunk_key(key, i)`,
    exactly as a separate call of the run's search would. A row's target depends on the chunk
    size only through the key of its call: Gumbel noise is drawn per search call ([chunk, A]
    from one key), so another chunk size draws other noise for the same row (the same
    distribution)."""
    t = collected
    cfg = config_lib.override(t.config, ["train.reanalyse_pass_chunk=16"])
    replay = t.replay
    order = np.asarray(reanalyse.pass_order(replay, "newest"))
    key = jax.random.key(11)
    before = jax.tree.map(np.asarray, replay)
    chunks = reanalyse.pass_chunks(cfg, 64)
    assert chunks == 4
    out = jax.jit(reanalyse.make_reanalyse_pass(t.model, cfg))(
        t.train_state, replay, key, jnp.int32(chunks))
    search = jax.jit(make_search_for(t.model, cfg))
    streams = replay.num_streams
    policy, value = np.asarray(out.rows.policy), np.asarray(out.rows.value)
    for i in range(chunks):
        cells = order[16 * i:16 * (i + 1)]
        slot, stream = cells // streams, cells % streams
        expected = search(t.train_state.target_params, reanalyse.chunk_key(key, i),
                          before.rows.observation[slot, stream],
                          before.rows.action_mask[slot, stream])
        np.testing.assert_array_equal(policy[slot, stream], np.asarray(expected.policy))
        np.testing.assert_array_equal(value[slot, stream], np.asarray(expected.value))


def test_pass_order_stalest_then_newest_or_highest_priority(collected):
    replay = collected.replay
    version = np.full(replay.target_version.shape, -1, np.int32)
    version[:8] = 20  # rows 0..7 of every stream already re-searched by an older network
    version[3, 1] = 40  # one by a newer one
    priority = np.asarray(replay.priority).copy()
    priority[10, 2] = 100.0
    state = replay.replace(target_version=jnp.asarray(version), priority=jnp.asarray(priority))
    streams = replay.num_streams
    newest = np.asarray(reanalyse.pass_order(state, "newest"))
    rows = [(i // streams, i % streams) for i in newest]
    # acting-search rows (8..15) first, newest first; then version 20; version 40 last of the
    # stored rows; empty rows after all of them
    # (ties keep the flat order: streams ascending within a row)
    assert rows[:32] == [(r, s) for r in range(15, 7, -1) for s in range(streams)]
    assert rows[32:63] == [(r, s) for r in range(7, -1, -1) for s in range(streams)
                           if (r, s) != (3, 1)]
    assert rows[63] == (3, 1) and rows[64][0] >= 16
    by_priority = [(i // streams, i % streams)
                   for i in np.asarray(reanalyse.pass_order(state, "priority"))]
    assert by_priority[0] == (10, 2)
    assert set(by_priority[:32]) == {(r, s) for r in range(8, 16) for s in range(streams)}


def test_pass_budget_and_ledger_counts():
    """Hand computation: 4 copies x 8 steps per iteration, learning from 100 real steps, 32
    updates per phase (iterations 4..8), a pass after every phase (interval 32): the replay then
    holds 32, 40, 48, 56 and 64 rows in each of 4 streams = 128, 160, 192, 224, 256 rows, which
    chunks of 64 cover in 2, 3, 3, 4 and 4 search calls of 64 roots x 8 simulations."""
    cfg = tiny_catch("run.real_steps=256", "train.learning_starts=100")
    assert [reanalyse.pass_chunks(cfg, rows) for rows in (128, 160, 192, 224, 256)] == [
        2, 3, 3, 4, 4]
    budget = config_lib.override(cfg, ["train.reanalyse_pass_rows=100"])
    assert [reanalyse.pass_chunks(budget, rows) for rows in (64, 128, 256)] == [1, 2, 2]
    assert reanalyse.pass_cost(cfg, 16) == 16 * 64 * 8


@pytest.mark.xdist_group("tiny_catch")
def test_pass_in_a_run_counts_exactly_compiles_once_and_resumes_bit_identical(tmp_path,
                                                                            limit_traces):
    limit_traces()  # one compile of the pass (and learner, collection) over every run below
    # evaluation on, as a user runs it (10 episodes at the end; not counted in the ledger)
    overrides = ["run.real_steps=256", "train.learning_starts=100", "run.checkpoint_interval=64"]
    straight = Trainer(tiny_catch(*overrides), str(tmp_path / "a"))
    ledger = straight.run(progress=False)
    S = 8
    assert ledger.updates == 160
    assert ledger.dream == (2 + 3 + 3 + 4 + 4) * 64 * S  # see test_pass_budget_and_ledger_counts
    assert ledger.search == 256 * S and ledger.unroll == 160 * 32 * 3
    assert ledger.reanalyse == 160 * 16 * (3 + 1) * S  # per-update reanalysis stays on
    assert ledger.simulated == ledger.search + ledger.reanalyse + ledger.dream + ledger.unroll
    # five passes, one compile: a second trace would have failed the run (`limit_traces`)
    # the last pass re-searched every stored row with the target network of update 160
    version = np.asarray(straight.replay.target_version)
    assert (version[:64] == 160).all() and (version[64:] == -1).all()

    calls = {"n": 0}

    def stop_after_six():  # mid-run, between checkpoints, after the second pass
        calls["n"] += 1
        return calls["n"] == 6

    first = Trainer(tiny_catch(*overrides), str(tmp_path / "b"))
    assert first.run(progress=False, stop_flag=stop_after_six).dream == (2 + 3 + 3) * 64 * S
    resumed = Trainer(tiny_catch(*overrides), str(tmp_path / "b"), resume=True)
    final = resumed.run(progress=False)
    assert final.to_json()["simulated"] == ledger.to_json()["simulated"]
    assert (tmp_path / "b" / "eval.csv").read_text() == (tmp_path / "a" / "eval.csv").read_text()
    leaves = [jax.tree.leaves((t.train_state, t.replay)) for t in (straight, resumed)]
    for a, b in zip(*leaves, strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_with_new_rows_every_sampled_position_reads_the_target_networks_search(tmp_path):
    """`train.reanalyse_pass_new_rows`: with the target refreshed and the replay re-searched
    every phase of 32 updates, the pass over the stale rows before each phase (all stored rows
    before the first, whose targets are the acting search's; the rows collected since after)
    leaves no sampled position with an older target: `targets/fresh` is 1 in every phase, where
    without it the newest rows' acting targets count against it. The counts by hand: stale
    passes of 2 (128 rows), 1, 1 calls of 64 roots, and after each phase a whole-replay pass of
    2, 3, 3 calls (128, 160, 192 rows)."""
    overrides = ("run.real_steps=192", "train.learning_starts=100",
                 "train.target_update_interval=32",
                 "run.eval_episodes=0")  # off: only the targets the learner reads are tested
    fresh = {}
    for new_rows in (True, False):
        out = tmp_path / str(new_rows)
        trainer = Trainer(tiny_catch(*overrides, f"train.reanalyse_pass_new_rows={new_rows}"),
                          str(out))
        trainer.run(progress=False)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        fresh[new_rows] = [r["targets/fresh"] for r in rows if "targets/fresh" in r]
        if new_rows:
            stale = [r["reanalyse_pass/stale_chunks"] for r in rows if "targets/fresh" in r]
            assert stale == [2, 1, 1]
            assert trainer.ledger.dream == ((2 + 1 + 1) + (2 + 3 + 3)) * 64 * 8
        else:
            assert not any("reanalyse_pass/stale_chunks" in r for r in rows)
            assert trainer.ledger.dream == (2 + 3 + 3) * 64 * 8
    assert fresh[True] == [1.0, 1.0, 1.0]
    assert len(fresh[False]) == 3 and all(f < 1.0 for f in fresh[False])
    replay = trainer.replay
    assert int(trainer.programs.stale_rows(replay, trainer.train_state.updates)) == 0
    assert int(trainer.programs.stale_rows(replay, trainer.train_state.updates + 32)) == 48 * 4


def test_a_checkpoint_from_before_target_versions_resumes(tmp_path):
    """A run checkpointed before the replay kept target versions resumes, its rows marked as
    the acting search's (-1), everything else restored as saved."""
    import dataclasses

    cfg = tiny_catch("run.real_steps=64", "train.learning_starts=32",
                     "run.eval_episodes=0",  # off: only the restore is tested here
                     "train.reanalyse_pass_interval=0")
    old = Trainer(cfg, str(tmp_path / "old"))
    old.run(progress=False)
    state = old._array_state()
    state["replay"] = {f.name: getattr(old.replay, f.name) for f in dataclasses.fields(old.replay)
                       if f.name != "target_version"}  # the replay as it was saved then
    record = old.checkpointer.restore_record()
    old.checkpointer = type(old.checkpointer)(str(tmp_path / "legacy" / "checkpoints"), 2)
    old.checkpointer.save(64, state, record)
    old.checkpointer.close()
    resumed = Trainer(config_lib.override(cfg, ["run.real_steps=96"]), str(tmp_path / "legacy"),
                      resume=True)
    assert (np.asarray(resumed.replay.target_version) == -1).all()
    from dreamer.checkpoint import CheckpointError

    with pytest.raises(CheckpointError):  # so the restore above took the legacy path
        resumed.checkpointer.restore(resumed._array_state(), 64)
    for a, b in zip(jax.tree.leaves((old.train_state, old.replay.rows, old.replay.priority)),
                    jax.tree.leaves((resumed.train_state, resumed.replay.rows,
                                     resumed.replay.priority)), strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert resumed.run(progress=False).env_steps == 96
