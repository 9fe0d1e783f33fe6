"""The learner's options at unit level, on a hand-built replay of the tiny cartpole network:
nan_policy, value_target=mixed, reanalyse_value (and its ledger cost), SGD's step decay."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from dreamer import config as config_lib
from dreamer import learner
from dreamer import replay as replay_lib
from dreamer import targets as targets_lib
from dreamer.networks import make_model

LENGTH, STREAMS = 40, 2


def _config(*overrides):
    return config_lib.override(config_lib.tiny(), ["world=cartpole", *overrides])


def _replay(world="cartpole"):
    """40 rows of 2 streams: random observations, actions and rewards in [0, 1), an episode end
    every 13 rows, and stored search values 100 + row (far from any n-step return here, which is
    below 3 + the network's bootstrap of ~0), so a target that took the stored value shows."""
    rng = np.random.default_rng(0)
    spec = worlds.make(world).spec
    A = spec.num_actions
    terminated = np.zeros((LENGTH, STREAMS), bool)
    terminated[12::13] = True
    rows = replay_lib.Rows(
        observation=rng.normal(size=(LENGTH, STREAMS, *spec.observation_shape)).astype(np.float32),
        action=rng.integers(0, A, (LENGTH, STREAMS)).astype(np.int32),
        reward=rng.uniform(size=(LENGTH, STREAMS)).astype(np.float32),
        terminated=terminated,
        truncated=np.zeros((LENGTH, STREAMS), bool),
        policy=np.full((LENGTH, STREAMS, A), 1.0 / A, np.float32),
        value=(100.0 + np.arange(LENGTH)[:, None] + np.zeros(STREAMS)).astype(np.float32),
        action_mask=np.ones((LENGTH, STREAMS, A), bool),
    )
    return spec, replay_lib.add(replay_lib.init(rows, LENGTH), rows)


def _parts(cfg, perturb=False, world="cartpole"):
    """A fresh train state, the replay and the train parts; `perturb` adds noise to the target
    network (its heads initialise to zeros, so every value and search value would be 0)."""
    spec, rstate = _replay(world)
    model = make_model(cfg.model, spec)
    ts = learner.init_train_state(model, cfg, jax.random.key(0),
                                  np.asarray(rstate.rows.observation[0, 0]))
    if perturb:
        leaves, tree = jax.tree.flatten(ts.target_params)
        keys = jax.random.split(jax.random.key(5), len(leaves))
        ts = ts.replace(target_params=jax.tree.unflatten(tree, [
            x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]))
    return ts, rstate, learner.make_train_parts(model, cfg)


def _leaves_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_nan_policy_skip_drops_a_non_finite_update():
    """train.nan_policy=skip: an update whose loss is not finite leaves the parameters, the target
    network and the optimizer state as they were (the update count still advances, and the
    sampled rows get priority 1); a finite update from the same state changes the parameters.
    (Under `stop` the Trainer raises TrainingDiverged: test_reliability.)"""
    cfg = _config("train.nan_policy=skip", "train.batch_size=8")
    ts, rstate, parts = _parts(cfg)
    windows, targets = jax.jit(parts.prepare)(ts, rstate, jax.random.split(jax.random.key(1), 1),
                                              jnp.float32(1e9))
    window = jax.tree.map(lambda x: x[0], windows)
    good = jax.tree.map(lambda x: x[0], targets)
    bad = good._replace(value=jnp.full_like(good.value, jnp.nan))  # NaN value targets: a NaN loss
    apply = jax.jit(parts.apply_update)
    # the warm-up's first learning rate is 0, so one finite update first: from there on an
    # applied update moves the parameters
    ts, rstate, metrics = apply(ts, rstate, window, good)
    assert bool(metrics["finite"]) and int(ts.updates) == 1

    skipped, replay_after, metrics = apply(ts, rstate, window, bad)
    assert not bool(metrics["finite"]) and not np.isfinite(float(metrics["loss/total"]))
    assert _leaves_equal(skipped.params, ts.params)
    assert _leaves_equal(skipped.target_params, ts.target_params)
    assert _leaves_equal(skipped.opt_state, ts.opt_state)
    assert int(skipped.updates) == 2
    np.testing.assert_array_equal(
        np.asarray(replay_after.priority)[np.asarray(window.start), np.asarray(window.stream)], 1.0)

    applied, _, metrics = apply(ts, rstate, window, good)
    assert bool(metrics["finite"])
    assert not _leaves_equal(applied.params, ts.params)
    assert not _leaves_equal(applied.opt_state, ts.opt_state)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(applied.params))


def test_value_target_mixed_takes_the_search_value_on_stale_rows():
    """train.value_target=mixed (EfficientZero V2): where off-policy correction cut a window's TD
    horizon (age >= age_per_step: horizon n - 1 or less), the value target of each valid row is
    the stored search value; fresh windows keep the n-step target. Reanalysis is off, so the
    search value is the one stored at acting time (100 + row)."""
    age_per_step = 20.0  # real steps of age per horizon step lost; ages here run 0..78
    K = _config().train.unroll_steps

    def prepared(value_target):
        cfg = _config("train.reanalyse_fraction=0", f"train.value_target={value_target}")
        ts, rstate, parts = _parts(cfg)
        windows, targets = jax.jit(parts.prepare)(
            ts, rstate, jax.random.split(jax.random.key(3), 1), jnp.float32(age_per_step))
        return windows, np.asarray(targets.value[0]), np.asarray(targets.value_valid[0])

    windows, nstep, valid = prepared("nstep")
    mixed_windows, mixed, mixed_valid = prepared("mixed")
    assert _leaves_equal(windows, mixed_windows)  # the same batch
    np.testing.assert_array_equal(valid, mixed_valid)
    stored = np.asarray(windows.rows.value[0, :, : K + 1])
    old = np.asarray(windows.age[0]) >= age_per_step  # [B]: horizon cut to n - 1 or less
    stale = old[:, None] & valid  # [B, K+1]
    fresh = np.broadcast_to(~old[:, None], valid.shape)
    assert stale.sum() >= 10 and fresh[:, 0].sum() >= 3  # the batch has both kinds
    np.testing.assert_array_equal(mixed[stale], stored[stale])
    assert (np.abs(nstep[stale] - stored[stale]) > 90).all()  # nstep did not take them
    np.testing.assert_array_equal(mixed[fresh], nstep[fresh])
    np.testing.assert_array_equal(mixed[~valid], 0.0)


def test_mixed_value_target_by_age_after_a_warm_up():
    """EfficientZero V2's rule: windows at least train.mixed_value_age real steps old take the
    stored search value, younger ones the n-step return; before update train.mixed_value_after
    every target is the n-step return (the train state here is at update 0)."""
    K = _config().train.unroll_steps

    def prepared(*sets):
        cfg = _config("train.reanalyse_fraction=0", "train.off_policy_correction=false", *sets)
        ts, rstate, parts = _parts(cfg)
        windows, targets = jax.jit(parts.prepare)(
            ts, rstate, jax.random.split(jax.random.key(3), 1), jnp.float32(20.0))
        return windows, np.asarray(targets.value[0]), np.asarray(targets.value_valid[0])

    windows, nstep, valid = prepared("train.value_target=nstep")
    _, mixed, _ = prepared("train.value_target=mixed", "train.mixed_value_age=40")
    _, waiting, _ = prepared("train.value_target=mixed", "train.mixed_value_age=40",
                             "train.mixed_value_after=1")
    stored = np.asarray(windows.rows.value[0, :, : K + 1])
    old = np.asarray(windows.age[0]) >= 40
    stale = old[:, None] & valid
    assert stale.sum() >= 10 and (~old).sum() >= 3  # the batch has both kinds
    np.testing.assert_array_equal(mixed[stale], stored[stale])
    np.testing.assert_array_equal(mixed[~old], nstep[~old])
    np.testing.assert_array_equal(waiting, nstep)  # update 0 < mixed_value_after = 1


def test_loss_scale_weighs_the_root_by_one_or_one_over_k():
    np.testing.assert_allclose(learner.loss_step_scale(5, "muzero"), [1, .2, .2, .2, .2, .2])
    np.testing.assert_allclose(learner.loss_step_scale(5, "efficientzero"), [.2] * 6)
    # one update on the same batch and targets: the terms without a root step (value prefix,
    # consistency) are equal; the policy and value terms lose (1 - 1/K) of their root step
    metrics = {}
    for mode in ("muzero", "efficientzero"):
        cfg = _config("train.reanalyse_fraction=0", f"train.loss_scale={mode}")
        ts, rstate, parts = _parts(cfg, perturb=True)
        windows, targets = jax.jit(parts.prepare)(
            ts, rstate, jax.random.split(jax.random.key(3), 1), jnp.float32(20.0))
        window, target = jax.tree.map(lambda x: x[0], (windows, targets))
        metrics[mode] = jax.device_get(jax.jit(parts.apply_update)(ts, rstate, window, target)[2])
    mz, ez = metrics["muzero"], metrics["efficientzero"]
    for term in ("loss/value_prefix", "loss/consistency"):
        assert ez[term] == pytest.approx(mz[term], rel=1e-6), term
    for term in ("loss/policy", "loss/value"):
        assert 0 < ez[term] < mz[term] - 1e-3, term


def test_update_cost_of_reanalyse_value_counts_the_bootstrap_search():
    """train.reanalyse_value=True runs a second search per reanalysed position, at the bootstrap
    state, so the ledger's reanalyse cost doubles: R roots x (K + 1) positions x 2 searches x S
    simulations. tiny: B = 32, R = round(0.5 x 32) = 16, K = 3, S = 8."""
    plain = learner.update_cost(_config())
    doubled = learner.update_cost(_config("train.reanalyse_value=true"))
    assert plain == learner.UpdateCost(unroll=32 * 3, reanalyse=16 * 4 * 8)
    assert doubled == learner.UpdateCost(unroll=32 * 3, reanalyse=16 * 4 * 2 * 8)
    other = learner.update_cost(_config("train.reanalyse_value=true", "train.batch_size=10",
                                        "train.reanalyse_fraction=0.25", "train.unroll_steps=5",
                                        "search.num_simulations=16"))
    assert other == learner.UpdateCost(unroll=10 * 5, reanalyse=2 * 6 * 2 * 16)  # R=round(2.5)
    none = learner.update_cost(_config("train.reanalyse_value=true", "search.algorithm=none"))
    assert none == learner.UpdateCost(unroll=32 * 3, reanalyse=0)


@pytest.mark.parametrize("reanalyse_value", [False, True])
def test_update_cost_is_what_prepare_searches(reanalyse_value, monkeypatch):
    """The ledger adds `update_cost(config).reanalyse` per update (Trainer); that is what
    `prepare` really searches: the roots of every search call it makes x the simulations per
    root (one model step each: test_search), for one batch and for G = 2 grouped batches. With
    train.reanalyse_value the second search, at the bootstrap states, doubles it.
    (Traced only: nothing is compiled.)"""
    searched = []
    make = learner.make_search_for

    def counting_search_for(model, config):
        run = make(model, config)

        def search(params, key, observation, action_mask, *args, **kwargs):
            searched.append(observation.shape[0])  # [roots, *obs]
            return run(params, key, observation, action_mask, *args, **kwargs)

        return search

    monkeypatch.setattr(learner, "make_search_for", counting_search_for)
    cfg = _config("train.batch_size=8", f"train.reanalyse_value={reanalyse_value}")
    ts, rstate, parts = _parts(cfg)
    S, R, K = cfg.search.num_simulations, learner.reanalysed_count(cfg), cfg.train.unroll_steps
    assert (S, R, K) == (8, 4, 3)
    cost = learner.update_cost(cfg)
    assert cost.reanalyse == R * (K + 1) * (2 if reanalyse_value else 1) * S
    for G in (1, 2):
        searched.clear()
        jax.eval_shape(parts.prepare, ts, rstate, jax.random.split(jax.random.key(1), G),
                       jnp.float32(1e9))
        # the policy search over the R x (K + 1) positions, then (reanalyse_value) the bootstrap
        assert searched == [G * R * (K + 1)] * (2 if reanalyse_value else 1)
        assert sum(searched) * S == G * cost.reanalyse


def test_reanalyse_value_bootstraps_the_reanalysed_rows_with_search():
    """train.reanalyse_value=True: the reanalysed rows (the first R of the batch) bootstrap their
    n-step targets with the search's root value instead of the target network's; the other rows'
    targets and every policy target stay as without it."""
    def prepared(reanalyse_value):
        cfg = _config("train.batch_size=8", f"train.reanalyse_value={reanalyse_value}")
        ts, rstate, parts = _parts(cfg, perturb=True)
        windows, targets = jax.jit(parts.prepare)(
            ts, rstate, jax.random.split(jax.random.key(4), 1), jnp.float32(1e9))
        return windows, [np.asarray(x[0]) for x in (targets.value, targets.value_valid,
                                                     targets.value_prefix, targets.policy)]

    windows, (value, valid, prefix, policy) = prepared(False)
    search_windows, (s_value, s_valid, s_prefix, s_policy) = prepared(True)
    assert _leaves_equal(windows, search_windows)
    R = learner.reanalysed_count(_config("train.batch_size=8"))
    assert R == 4
    np.testing.assert_array_equal(valid, s_valid)
    np.testing.assert_array_equal(prefix, s_prefix)
    np.testing.assert_array_equal(policy, s_policy)
    np.testing.assert_array_equal(value[R:], s_value[R:])
    # the targets that bootstrap at all (no terminal within the horizon) are the ones that change
    cfg = _config()
    rows = jax.tree.map(lambda x: x[0], windows.rows)
    plan = targets_lib.nstep_plan(rows.reward, rows.terminated, rows.truncated, windows.present[0],
                                  jnp.full((8,), cfg.train.td_steps, jnp.int32),
                                  cfg.train.unroll_steps, cfg.train.td_steps, cfg.train.discount)
    bootstraps = valid[:R] & (np.asarray(plan.bootstrap_discount)[:R] > 0)
    assert 0 < bootstraps.sum() < bootstraps.size  # both kinds in the batch
    differs = np.abs(value[:R] - s_value[:R]) > 1e-3  # the values are O(1) and differ by O(1)
    np.testing.assert_array_equal(differs, bootstraps)


def test_sgd_step_decay_schedule():
    """optimizer=sgd: the learning rate rises linearly from 0 over lr_warmup_updates, holds, and
    drops 10x after lr_decay_updates more (counted from the end of the warm-up, as EfficientZero's
    adjust_lr does); momentum 0.9. Read off the updates of a constant gradient of 1: update_t =
    -lr_t x trace_t with trace_t = sum_{i<=t} 0.9^i."""
    warmup, decay, lr = 10, 20, 0.2
    cfg = _config("train.optimizer=sgd", f"train.learning_rate={lr}",
                  f"train.lr_warmup_updates={warmup}", f"train.lr_decay_updates={decay}",
                  "train.weight_decay=0")
    optimizer = learner.make_optimizer(cfg)
    params = {"w": jnp.zeros(())}

    def step(state, _):
        updates, state = optimizer.update({"w": jnp.ones(())}, state, params)
        return state, updates["w"]

    _, updates = jax.lax.scan(step, optimizer.init(params), None, length=45)
    t = np.arange(45)
    trace = (1 - 0.9 ** (t + 1)) / (1 - 0.9)
    expected = np.where(t < warmup, lr * t / warmup, np.where(t < warmup + decay, lr, lr / 10))
    # float32 arithmetic of the schedule and the momentum trace: a few ulps
    np.testing.assert_allclose(-np.asarray(updates) / trace, expected, rtol=1e-5, atol=1e-7)
    assert expected[warmup + decay - 1] == lr and expected[warmup + decay] == pytest.approx(lr / 10)

    # the weight decay is applied (L2, through the same momentum and learning rate)
    decayed = learner.make_optimizer(_config("train.optimizer=sgd", "train.lr_warmup_updates=1",
                                             "train.learning_rate=0.5", "train.weight_decay=0.1"))
    params = {"w": jnp.full((), 2.0)}
    state = decayed.init(params)
    for _ in range(2):  # step 0 has learning rate 0 (the warm-up's start)
        updates, state = decayed.update({"w": jnp.zeros(())}, state, params)
    # trace = 0.1 x 2 (step 0) x 0.9 + 0.1 x 2 = 0.38; update = -0.5 x 0.38
    assert float(updates["w"]) == pytest.approx(-0.19, rel=1e-6)
    adamw = learner.make_optimizer(_config())
    assert not _leaves_equal(adamw.init(params), state)


def test_nan_policy_skip_keeps_training_through_non_finite_updates(tmp_path):
    """Through the Trainer, train.nan_policy=skip runs to the end where `stop` raises
    TrainingDiverged (test_reliability): every update is counted, the parameters stay finite, and
    the final checkpoint is written. The rewards of episode ends reach the replay as NaN, so most
    batches have a NaN loss. 96 real steps of 32 per iteration, learning from 64: 2 phases of
    32 updates."""
    from dreamer.train import Trainer

    # plain catch, whose collection program is tiny catch's (compiled once, in the persistent
    # cache); the NaN enters between collection and the replay. Evaluation is off: it is not
    # what is tested.
    cfg = config_lib.override(config_lib.tiny(), [
        "world=catch", "run.real_steps=96", "train.learning_starts=64",
        "run.eval_episodes=0",  # off: not tested here (test_agent covers evaluation)
        "train.nan_policy=skip"])
    trainer = Trainer(cfg, str(tmp_path))
    add = trainer._add
    trainer._add = lambda replay, rows: add(
        replay, rows._replace(reward=jnp.where(rows.terminated, jnp.nan, rows.reward)))
    ledger = trainer.run(progress=False)
    assert ledger.env_steps == 96 and ledger.updates == 64
    assert int(trainer.train_state.updates) == 64
    assert all(np.isfinite(np.asarray(x)).all()
               for x in jax.tree.leaves((trainer.train_state.params, trainer.train_state.opt_state)))
    assert trainer.checkpointer.latest_step() == 96
    losses = [json.loads(line)["loss/total"] for line in open(tmp_path / "metrics.jsonl")]
    assert len(losses) == 2 and not np.isfinite(losses).all()  # non-finite updates happened


def test_prepare_returns_named_targets_of_the_documented_shapes():
    """`prepare` returns a `targets.Targets`, each field of the shape and dtype its docstring
    gives, behind the group's leading [G] axis (traced only: nothing is compiled)."""
    cfg = _config("train.batch_size=8")
    ts, rstate, parts = _parts(cfg)
    G, B, K, A = 2, 8, cfg.train.unroll_steps, 2
    _, targets = jax.eval_shape(parts.prepare, ts, rstate, jax.random.split(jax.random.key(1), G),
                                jnp.float32(1e9))
    assert isinstance(targets, targets_lib.Targets)
    assert isinstance(targets.masks, targets_lib.EpisodeMasks)
    got = {name: (x.shape, x.dtype) for name, x in
           {**targets._asdict(), **targets.masks._asdict()}.items() if name != "masks"}
    assert got == {"value": ((G, B, K + 1), jnp.float32), "value_valid": ((G, B, K + 1), bool),
                   "value_prefix": ((G, B, K), jnp.float32),
                   "policy": ((G, B, K + 1, A), jnp.float32), "fresh": ((G, B, K + 1), bool),
                   "alive": ((G, B, K + 1), bool), "absorbing": ((G, B, K + 1), bool)}


def test_negative_entropy_hand_values_and_gradient_sign():
    """The entropy bonus's term sum_a p log p: -log 2 at a uniform pair; at p = (3/4, 1/4)
    3/4 log 3/4 + 1/4 log 1/4 = -0.5623. Its gradient points away from uniform, so descending
    it lowers the larger logit and raises the smaller: the policy spreads."""
    uniform = learner.negative_entropy(jnp.zeros(2))
    assert float(uniform) == pytest.approx(-np.log(2), rel=1e-6)
    logits = jnp.array([np.log(3.0), 0.0])
    assert float(learner.negative_entropy(logits)) == pytest.approx(
        0.75 * np.log(0.75) + 0.25 * np.log(0.25), rel=1e-6)
    grad = jax.grad(learner.negative_entropy)(logits)
    assert float(grad[0]) > 0 > float(grad[1])
    # d/dz_0 of p log p summed, p_0 = sigmoid(z_0 - z_1): p_0 p_1 log(p_0 / p_1)
    assert float(grad[0]) == pytest.approx(0.75 * 0.25 * np.log(3.0), rel=1e-5)
    np.testing.assert_allclose(jax.grad(learner.negative_entropy)(jnp.zeros(3)), 0, atol=1e-7)


def test_entropy_weight_adds_minus_the_weighted_policy_entropy():
    """train.entropy_weight=w: the loss gains w x loss/entropy, where loss/entropy is minus the
    policy's entropy at the root and each unrolled step, weighted as the policy loss (live steps,
    the per-step scale, the importance weights). The policy head initialises to zeros, so the
    policy is uniform over cartpole's 2 actions: each live step adds -log 2 x its scale. The
    other terms are as without it, and without it there is no loss/entropy."""
    metrics = {}
    for weight in (0.0, 0.5):
        cfg = _config("train.reanalyse_fraction=0", f"train.entropy_weight={weight}")
        ts, rstate, parts = _parts(cfg)
        windows, targets = jax.jit(parts.prepare)(
            ts, rstate, jax.random.split(jax.random.key(3), 1), jnp.float32(20.0))
        window, target = jax.tree.map(lambda x: x[0], (windows, targets))
        metrics[weight] = jax.device_get(jax.jit(parts.apply_update)(ts, rstate, window,
                                                                     target)[2])
    off, on = metrics[0.0], metrics[0.5]
    assert "loss/entropy" not in off
    K = cfg.train.unroll_steps
    scale = np.asarray(learner.loss_step_scale(K, cfg.train.loss_scale))
    alive = np.asarray(target.masks.alive, np.float32)
    want = np.mean(np.asarray(window.weight) * (alive * scale).sum(1) * -np.log(2.0))
    assert alive[:, 1:].sum() < alive[:, 1:].size  # some unrolled steps are past an episode end
    assert on["loss/entropy"] == pytest.approx(want, rel=1e-5)
    assert on["loss/total"] == pytest.approx(off["loss/total"] + 0.5 * want, rel=1e-5)
    for term in ("loss/policy", "loss/value", "loss/value_prefix", "loss/consistency"):
        assert on[term] == off[term], term


def test_v2_options_together_train_at_toy_size():
    """The three EfficientZero V2 options on together (the action embedding, 11 bins over
    [-5, 5] for value and reward, the entropy bonus) on the tiny catch conv network: the heads
    have 11 atoms and two updates run with finite losses, loss/entropy among them."""
    cfg = config_lib.override(config_lib.tiny(), [
        "world=catch", "model.encoder=conv", "model.action_embedding=4", "model.support_bins=11",
        "train.entropy_weight=0.005", "train.batch_size=8", "train.augment_shift=1"])
    spec = worlds.make("catch").spec
    rng = np.random.default_rng(0)
    A = spec.num_actions
    terminated = np.zeros((LENGTH, STREAMS), bool)
    terminated[8::9] = True
    rows = replay_lib.Rows(
        observation=rng.integers(0, 2, (LENGTH, STREAMS, *spec.observation_shape)).astype(
            np.float32),
        action=rng.integers(0, A, (LENGTH, STREAMS)).astype(np.int32),
        reward=np.where(terminated, 1.0, 0.0).astype(np.float32), terminated=terminated,
        truncated=np.zeros((LENGTH, STREAMS), bool),
        policy=np.full((LENGTH, STREAMS, A), 1.0 / A, np.float32),
        value=np.zeros((LENGTH, STREAMS), np.float32), action_mask=np.ones((LENGTH, STREAMS, A), bool))
    rstate = replay_lib.add(replay_lib.init(rows, LENGTH), rows)
    model = make_model(cfg.model, spec)
    ts = learner.init_train_state(model, cfg, jax.random.key(0), rows.observation[0, 0])
    assert ts.params["params"]["value_head_1"]["kernel"].shape[-1] == 11
    assert ts.params["params"]["prefix_head_2"]["kernel"].shape[-1] == 11
    assert "action_embed" in ts.params["params"]
    train_many = jax.jit(learner.make_train_many(model, cfg, 2))
    ts, _, metrics = train_many(ts, rstate, jax.random.key(1), jnp.float32(10.0))
    assert int(ts.updates) == 2
    assert {"loss/total", "loss/entropy"} <= set(metrics)
    assert all(np.isfinite(np.asarray(v)).all() for k, v in metrics.items() if k.startswith("loss/"))
    assert float(metrics["loss/entropy"][0]) < 0  # minus an entropy


def test_illegal_actions_get_no_policy_gradient():
    """With `train.legal_policy_loss` (a continual run's default) the policy loss is a
    cross-entropy over each position's legal actions: SGD updates (no weight decay) on catch rows where action 2 is illegal leaves the policy
    head's output for action 2 exactly as it was and moves the others'. Over all actions, the
    zero target of an illegal action drives its logit down, and a later world of a continual
    run where that action is legal starts with a prior that search cannot lift."""
    cfg = _config("world=catch", "train.reanalyse_fraction=0", "train.optimizer=sgd",
                  "train.weight_decay=0", "train.lr_warmup_updates=0",
                  "train.legal_policy_loss=true")
    ts, rstate, parts = _parts(cfg, perturb=True, world="catch")
    rows = rstate.rows._replace(
        action=jnp.zeros_like(rstate.rows.action),
        action_mask=rstate.rows.action_mask.at[..., 2].set(False),
        policy=jnp.zeros_like(rstate.rows.policy).at[..., 0].set(0.7).at[..., 1].set(0.3))
    rstate = rstate.replace(rows=rows)
    windows, targets = jax.jit(parts.prepare)(
        ts, rstate, jax.random.split(jax.random.key(3), 1), jnp.float32(20.0))
    window, target = jax.tree.map(lambda x: x[0], (windows, targets))
    apply = jax.jit(parts.apply_update)
    # two updates: the schedule's first learning rate is 0 (warm-up from 0)
    after = apply(apply(ts, rstate, window, target)[0], rstate, window, target)[0]

    def head(state):
        out = state.params["params"]["policy_head_1"]
        return np.asarray(out["kernel"]), np.asarray(out["bias"])

    (k0, b0), (k1, b1) = head(ts), head(after)
    np.testing.assert_array_equal(k1[:, 2], k0[:, 2])
    assert b1[2] == b0[2]
    assert not np.array_equal(k1[:, 0], k0[:, 0]) and b1[0] > b0[0] and b1[1] < b1[0]
    # every action legal: the logits are unchanged, bit for bit
    logits = jax.random.normal(jax.random.key(1), (4, 3, 5))
    assert (learner.legal_logits(logits, jnp.ones((4, 3, 5), bool)) == logits).all()
