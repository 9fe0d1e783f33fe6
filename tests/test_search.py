"""Search: value prefix -> reward conversion, LSTM resets by depth, masks, exact costs, and exact
visit counts and policies on bandits written as plain functions (no network)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from dreamer import config as config_lib
from dreamer import learner, search
from dreamer.networks import LatentModel, LSTMState, WorldModel, latent_model, make_model
from dreamer.transforms import categorical_to_scalar


def test_value_prefix_to_reward_hand_values():
    child = jnp.array([1.5, 4.0, 2.0, 7.0])
    parent = jnp.array([1.0, 3.0, 5.0, 6.0])
    depth = jnp.array([0, 1, 5, 6])
    # horizon 5: edges leaving depth 0 and 5 reset (the child prefix is the reward)
    np.testing.assert_allclose(
        search.value_prefix_to_reward(child, parent, depth, 5), [1.5, 1.0, 2.0, 1.0]
    )


def _model(world_name="cartpole", **overrides):
    cfg = config_lib.override(config_lib.tiny(), [f"world={world_name}"])
    world = worlds.make(world_name)
    model = make_model(cfg.model, world.spec)
    obs = np.zeros(world.spec.observation_shape, np.float32)
    params = learner.init_train_state(model, cfg, jax.random.key(0), obs).params
    return cfg, world, model, params


def test_recurrent_fn_resets_lstm_every_horizon():
    """With horizon 2 the LSTM restarts from zeros on the edges leaving depths 0 and 2, and carries
    its state on the edges leaving depths 1 and 3: the prefix (and LSTM state) of a node equals a
    fresh LSTM's on the parent's latent exactly where the parent's depth is a multiple of 2."""
    cfg, world, model, params = _model()
    # The prefix head's last layer starts at zero, so every prefix would be the same constant and
    # could not tell a reset from a carried state: give it random weights.
    head = params["params"]["prefix_head_2"]
    params = jax.tree.map(lambda x: x, params)  # a copy, the rest shared
    params["params"]["prefix_head_2"] = {
        "kernel": jax.random.normal(jax.random.key(7), head["kernel"].shape),
        "bias": head["bias"],
    }
    horizon = 2
    fns = latent_model(model)
    recurrent_fn = jax.jit(search.make_recurrent_fn(fns, 0.9, horizon))
    obs = jax.random.normal(jax.random.key(1), (3, 4))
    emb = search.root(fns, params, obs).embedding
    action = jnp.array([0, 1, 0])
    fresh = model.initial_lstm_state(3)
    for depth in range(4):  # the edge leaving a node at `depth`
        out, child = recurrent_fn(params, None, action, emb)
        assert np.all(np.asarray(child.depth) == depth + 1)
        # a fresh LSTM (zero state) applied to the same next latent
        nxt = model.apply(params, emb.latent, action, method=WorldModel.dynamics)
        logits, fresh_lstm = model.apply(params, nxt, fresh, method=WorldModel.value_prefix)
        fresh_prefix = np.asarray(categorical_to_scalar(logits, model.config.reward_support))
        prefix = np.asarray(child.prefix)
        if depth % horizon == 0:
            # the same computation (jitted or not): float32 rounding only
            np.testing.assert_allclose(prefix, fresh_prefix, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(child.lstm.hidden, fresh_lstm.hidden, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(out.reward, prefix, rtol=1e-6)
        else:
            # the carried state moves every copy's prefix far beyond rounding: the smallest gap
            # here is 0.29; 1e-3 is still 1,000 times the equality tolerance above
            assert np.all(np.abs(prefix - fresh_prefix) > 1e-3), (prefix, fresh_prefix)
            assert np.all(np.abs(np.asarray(child.lstm.hidden - fresh_lstm.hidden)).max(-1) > 1e-3)
            np.testing.assert_allclose(out.reward, prefix - np.asarray(emb.prefix), rtol=1e-6)
        emb = child
    assert out.discount.shape == (3,) and np.allclose(out.discount, 0.9)


def test_masked_actions_are_never_chosen_and_get_no_policy():
    cfg, world, model, params = _model("catch")
    obs = jnp.zeros((16, *world.spec.observation_shape))
    mask = jnp.array([[True, False, True]] * 16)
    for algorithm in ["muzero", "gumbel"]:
        s_cfg = config_lib.dataclasses.replace(cfg.search, algorithm=algorithm, num_simulations=8)
        run = search.make_search(latent_model(model), s_cfg, 0.99, 5)
        out = jax.jit(lambda k, run=run: run(params, k, obs, mask))(jax.random.key(0))
        assert not np.any(np.asarray(out.action) == 1)
        np.testing.assert_allclose(np.asarray(out.policy)[:, 1], 0.0)
        np.testing.assert_allclose(np.asarray(out.policy).sum(-1), 1.0, rtol=1e-5)


def test_search_costs_one_model_step_per_simulation_per_root():
    cfg, world, model, params = _model()
    calls = {"roots": 0}
    fns = latent_model(model)
    inner = search.make_recurrent_fn(fns, 0.99, 5)

    def counting(params, key, action, emb):
        calls["roots"] += action.shape[0]
        return inner(params, key, action, emb)

    import mctx

    def policy(params, key):
        root = search.root(fns, params, jnp.zeros((7, 4)))
        # unrolled python loop so every recurrent application is counted at trace time
        return mctx.muzero_policy(params, key, root, counting, 6,
                                  loop_fn=lambda lo, hi, body, init: _python_loop(lo, hi, body, init))

    jax.make_jaxpr(policy)(params, jax.random.key(0))  # traced only: nothing is compiled
    assert calls["roots"] == 7 * 6


def _python_loop(lo, hi, body, init):
    value = init
    for i in range(lo, hi):
        value = body(i, value)
    return value


def test_policy_head_acting_respects_mask_and_spends_nothing():
    """The planning-free ablation: greedy = argmax of the masked prior; sampling never picks a
    masked action; no recurrent step is taken (the model's dynamics are never applied)."""
    cfg, world, model, params = _model("catch")
    none = config_lib.override(cfg, ["search.algorithm=none"]).search
    assert none.simulations_per_root == 0
    obs = jax.random.uniform(jax.random.key(3), (64, *world.spec.observation_shape))
    mask = jnp.tile(jnp.array([True, False, True]), (64, 1))
    calls = {"dynamics": 0}
    fns = latent_model(model)

    def counting(*args):
        calls["dynamics"] += 1
        return fns.dynamics(*args)

    run = search.make_search(dataclasses.replace(fns, dynamics=counting), none, 0.99, 5)
    act = jax.jit(lambda k, t, explore: run(params, k, obs, mask, temperature=t, explore=explore),
                  static_argnums=2)  # traced here, so the count sees every model call
    out = act(jax.random.key(4), 1.0, True)
    greedy = act(jax.random.key(4), 0.0, False)
    assert calls["dynamics"] == 0
    assert not np.any(np.asarray(out.action) == 1)
    np.testing.assert_allclose(np.asarray(out.policy)[:, 1], 0.0)
    np.testing.assert_allclose(np.asarray(out.policy).sum(-1), 1.0, rtol=1e-5)
    root = search.root(fns, params, obs)
    expected = np.argmax(np.where(np.asarray(mask), np.asarray(root.prior_logits), -np.inf), -1)
    np.testing.assert_array_equal(np.asarray(greedy.action), expected)


def test_evaluation_temperature_samples_the_search_policy():
    """Evaluation (no root noise): temperature 0 plays a most likely action of the search policy;
    T > 0 draws from the policy sharpened to p^(1/T), never a masked action, for every search."""
    cfg, world, model, params = _model("catch")
    n = 512
    one = jax.random.uniform(jax.random.key(3), world.spec.observation_shape)
    obs = jnp.broadcast_to(one, (n, *one.shape))
    mask = jnp.tile(jnp.array([True, False, True]), (n, 1))
    for algorithm in ["muzero", "gumbel", "none"]:
        s_cfg = config_lib.dataclasses.replace(cfg.search, algorithm=algorithm, num_simulations=8)
        run = search.make_search(latent_model(model), s_cfg, 0.99, 5)
        act = jax.jit(lambda k, t, run=run: run(params, k, obs, mask, temperature=t,
                                                explore=False))
        greedy = act(jax.random.key(0), 0.0)
        policy = np.asarray(greedy.policy)
        chosen = policy[np.arange(n), np.asarray(greedy.action)]
        np.testing.assert_allclose(chosen, policy.max(-1), err_msg=algorithm)
        sampled = act(jax.random.key(1), 1.0)
        actions = np.asarray(sampled.action)
        assert not np.any(actions == 1), algorithm
        frequency = np.bincount(actions, minlength=3) / n
        mean_policy = np.asarray(sampled.policy).mean(0)
        assert 0.05 < mean_policy[0] < 0.95, (algorithm, mean_policy)  # both actions plausible
        # 3 sigma of a frequency over n draws at its widest (p = 0.5): 3 * sqrt(0.25 / 512) = 0.066
        np.testing.assert_allclose(frequency, mean_policy, atol=3 * np.sqrt(0.25 / n), err_msg=algorithm)
        # a very low temperature is the greedy choice again
        sharp = act(jax.random.key(2), 1e-3)
        p = np.asarray(sharp.policy)
        np.testing.assert_allclose(p[np.arange(n), np.asarray(sharp.action)], p.max(-1),
                                   err_msg=algorithm)


def _hand_tree():
    """An unbatched mctx tree of 4 nodes x 3 actions: root 0 has children 1 (action 0) and 2
    (action 1) visited, action 2 not; node 1 has child 3 (action 2) visited."""
    import mctx

    nodes, actions = 4, 3
    visits = np.zeros((nodes, actions), np.int32)
    rewards = np.zeros((nodes, actions), np.float32)
    discounts = np.full((nodes, actions), 0.9, np.float32)
    values = np.zeros((nodes, actions), np.float32)
    visits[0, 0], rewards[0, 0], values[0, 0] = 3, 0.10, 0.50  # Q = 0.1 + 0.9 * 0.5 = 0.55
    visits[0, 1], rewards[0, 1], values[0, 1] = 1, 0.00, 0.40  # Q = 0.36
    visits[1, 2], rewards[1, 2], values[1, 2] = 2, 0.05, 0.70  # Q = 0.68 (deeper in the tree)
    children = np.full((nodes, actions), -1, np.int32)
    children[0, 0], children[0, 1], children[1, 2] = 1, 2, 3
    tree = mctx.Tree(
        node_visits=jnp.asarray([6, 3, 1, 2], jnp.int32),
        raw_values=jnp.zeros(nodes), node_values=jnp.asarray([0.5, 0.5, 0.4, 0.7]),
        parents=jnp.asarray([-1, 0, 0, 1]), action_from_parent=jnp.asarray([-1, 0, 1, 2]),
        children_index=jnp.asarray(children), children_prior_logits=jnp.zeros((nodes, actions)),
        children_visits=jnp.asarray(visits), children_rewards=jnp.asarray(rewards),
        children_discounts=jnp.asarray(discounts), children_values=jnp.asarray(values),
        embeddings=jnp.zeros((nodes,)), root_invalid_actions=jnp.zeros(actions),
        extra_data=None)
    return tree


def test_tree_min_max_normalises_by_the_whole_tree_with_a_floor():
    """EfficientZero's normalisation: the root's Qs (0.55, 0.36) are scaled by the min and max of
    every visited Q in the tree (0.36 and 0.68, the latter below the root), unvisited 0; with
    all Qs within 0.01 of each other the range is 0.01, not mctx's 1e-8."""
    import mctx

    tree = _hand_tree()
    got = np.asarray(search.qtransform_tree_min_max(tree, jnp.int32(0)))
    np.testing.assert_allclose(got, [(0.55 - 0.36) / 0.32, 0.0, 0.0], rtol=1e-5)
    # mctx's default differs: min-max over the root (0.5) and its visited children only
    node = np.asarray(mctx.qtransform_by_parent_and_siblings(tree, jnp.int32(0)))
    np.testing.assert_allclose(node[:2], [1.0, 0.0], atol=1e-6)
    # a flat tree: Qs 0.500 and 0.503 at the root, 0.501 below (range 0.003 < floor 0.01)
    flat = tree.replace(children_values=tree.children_values.at[0, 0].set((0.5 - 0.1) / 0.9)
                        .at[0, 1].set(0.503 / 0.9).at[1, 2].set((0.501 - 0.05) / 0.9))
    got = np.asarray(search.qtransform_tree_min_max(flat, jnp.int32(0)))
    np.testing.assert_allclose(got[:2], [0.0, 0.3], atol=1e-4)  # (0.503 - 0.5) / 0.01
    assert float(search.qtransform_tree_min_max(tree, jnp.int32(3)).max()) == 0.0  # a leaf


def test_root_noise_goes_to_the_legal_actions_only():
    """3 legal actions of 12, a prior sure of action 0: the noise's share on the other legal
    actions is fraction x (L - 1) / L in expectation (Dirichlet over the L legal actions), where
    mctx's draw over all 12 would leave them about 3/12 of it before renormalising."""
    fraction, alpha, draws = 0.25, 0.3, 4000
    mask = jnp.zeros((draws, 12), bool).at[:, jnp.array([0, 5, 7])].set(True)
    prior = jnp.zeros((draws, 12)).at[:, 0].set(30.0)  # all prior mass on action 0
    logits = search.legal_root_noise(jax.random.key(0), prior, mask, fraction, alpha)
    probs = np.asarray(jax.nn.softmax(logits))
    assert np.all(probs[:, ~np.asarray(mask[0])] == 0.0)  # illegal actions get nothing
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    others = probs[:, [5, 7]].sum(-1)
    # E = 0.25 x 2/3; bound: 4 standard errors of the mean over the 4,000 draws
    assert abs(others.mean() - fraction * 2 / 3) < 4 * others.std() / np.sqrt(draws)
    assert others.min() >= 0.0 and others.max() <= fraction + 1e-6
    # with every action legal it is mctx's mixture: (1 - f) softmax(prior) + f Dir(alpha)
    full = jnp.ones((1, 4), bool)
    p = jnp.array([[0.5, 1.0, -1.0, 0.0]])
    noisy = np.asarray(jax.nn.softmax(search.legal_root_noise(jax.random.key(1), p, full, 0.25,
                                                              0.3)))
    noise = (noisy - 0.75 * np.asarray(jax.nn.softmax(p))) / 0.25
    assert np.all(noise >= -1e-6) and abs(noise.sum() - 1.0) < 1e-5



def test_tree_normalisation_for_gumbel_keeps_mctx_completion_and_scale():
    """Gumbel's completed Qs under EfficientZero's tree-wide min-max: the root's visited Qs
    (0.55, 0.36) and the unvisited action's mixed value are normalised by every visited Q of the
    tree (0.36 to 0.68), clipped to [0, 1], and scaled by mctx's (50 + max visits) x 0.1, where
    mctx's default stretches the root's own Qs to the whole [0, 1]."""
    import mctx

    tree = _hand_tree()
    got = np.asarray(search.qtransform_tree_completed_by_mix_value(tree, jnp.int32(0)))
    scale = (50 + 3) * 0.1
    raw = np.asarray(mctx.qtransform_completed_by_mix_value(
        tree, jnp.int32(0), value_scale=1.0, maxvisit_init=1.0, rescale_values=False)) / 4.0
    np.testing.assert_allclose(raw[:2], [0.55, 0.36], rtol=1e-5)  # mctx's completion, unscaled
    expected = scale * np.clip((raw - 0.36) / 0.32, 0.0, 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got[:2], [scale * 0.19 / 0.32, 0.0], rtol=1e-5)
    default = np.asarray(mctx.qtransform_completed_by_mix_value(tree, jnp.int32(0)))
    assert default[0] == pytest.approx(scale) and got[0] < 0.6 * scale  # the default stretches
    # a flat tree (visited Qs within 0.003): the range is floored at 0.01, so the root's gap of
    # 0.003 is 0.3 of the scale, not all of it
    flat = tree.replace(children_values=tree.children_values.at[0, 0].set((0.5 - 0.1) / 0.9)
                        .at[0, 1].set(0.503 / 0.9).at[1, 2].set((0.501 - 0.05) / 0.9))
    got = np.asarray(search.qtransform_tree_completed_by_mix_value(flat, jnp.int32(0)))
    np.testing.assert_allclose(got[1] - got[0], scale * 0.3, rtol=1e-3)


def test_every_preset_takes_tree_normalisation_and_the_planning_free_ablation():
    for preset in (config_lib.text(), config_lib.minatar()):  # PUCT and Gumbel both take it
        assert preset.search.q_normalisation == "node"  # so the override below changes it
        cfg = config_lib.override(preset, ["search.q_normalisation=tree"])
        assert cfg.search.q_normalisation == "tree"
    # `dreamer sweep` adds search.algorithm=none to every sweep: it must build on each preset,
    # the Atari ones (tree normalisation) included, where nothing is searched to normalise
    for name in config_lib.PRESETS:
        cfg = config_lib.override(config_lib.preset(name), ["search.algorithm=none"])
        assert cfg.search.algorithm == "none"
    assert config_lib.preset("atari100k").search.q_normalisation == "tree"

    with pytest.raises(config_lib.ConfigError, match="search.q_floor must be > 0"):
        config_lib.override(config_lib.minatar(), ["search.q_normalisation=tree", "search.q_floor=0"])
    with pytest.raises(config_lib.ConfigError, match="set search.q_normalisation=tree with it"):
        config_lib.override(config_lib.minatar(), ["search.q_floor=1.0"])  # the preset: node


def test_tree_q_floor_reaches_the_gumbel_policy_target():
    """`search.q_floor` is the floor of the tree-wide Q range: on a two-armed bandit (equal
    priors, rewards h^-1(1) ~ 2.99 and 0, discount 0, the value prefix reset at every step so
    every edge's Q is its action's reward) sequential halving visits each arm 4 times, and the
    improved policy's logit gap is (50 + 4) x 0.1 x the normalised gap: 5.4 with EfficientZero's
    0.01 (the range, 2.99, is above it), 5.4 x 2.99 / 100 with a floor of 100."""
    fns = _bandit([0.0, 0.0], [1, 0])
    mask = jnp.array([[True, True]])
    r0 = _reward(1)
    for floor, gap in ((0.01, 5.4), (100.0, 5.4 * r0 / 100.0)):
        s_cfg = config_lib.SearchConfig(algorithm="gumbel", num_simulations=8,
                                        max_num_considered_actions=2, q_normalisation="tree",
                                        q_floor=floor)
        out = jax.jit(search.make_search(fns, s_cfg, 0.0, 1), static_argnames="explore")(
            (), jax.random.key(0), jnp.zeros((1, 2)), mask, 0.0, explore=False)
        policy = np.asarray(out.policy)[0]
        np.testing.assert_allclose(np.log(policy[0] / policy[1]), gap, rtol=1e-4)


def _bandit(prior_logits, reward_atoms, support: int = 3) -> LatentModel:
    """A one-step bandit as a LatentModel of plain functions (no network, no parameters).

    The latent [B, 1] is 0 at the root and a + 1 after action a; the policy logits are
    `prior_logits` at every node and the value is 0. The value prefix after action a puts all its
    mass on the atom `reward_atoms[a]` of -support..support (every other logit -inf), so an edge
    leaving the root (where the LSTM resets) has the reward h^-1(atom) exactly. With discount 0
    the Q of a root action is its reward alone, whatever the tree below it holds."""
    prior = jnp.asarray(prior_logits, jnp.float32)
    atoms = jnp.arange(-support, support + 1)

    def all_on(atom):  # [B] int -> [B, 2S+1] logits with all mass on `atom`
        return jnp.where(atoms == atom[:, None], 0.0, -jnp.inf)

    def represent(params, observation):
        return jnp.zeros((observation.shape[0], 1))

    def dynamics(params, latent, action):
        return (action + 1).astype(jnp.float32)[:, None]

    def predict(params, latent):
        batch = latent.shape[0]
        return jnp.broadcast_to(prior, (batch, prior.shape[0])), all_on(jnp.zeros(batch, int))

    def value_prefix(params, latent, lstm):
        action = latent[:, 0].astype(jnp.int32) - 1
        return all_on(jnp.asarray(reward_atoms)[action]), lstm

    def initial_lstm(batch):
        zeros = jnp.zeros((batch, 1))
        return LSTMState(zeros, zeros)

    return LatentModel(represent, dynamics, predict, value_prefix, initial_lstm,
                       value_support=support, reward_support=support)


def _reward(atom) -> float:
    """h^-1(atom): the bandit's reward for a value prefix all on `atom`."""
    return float(categorical_to_scalar(jnp.where(jnp.arange(-3, 4) == atom, 0.0, -jnp.inf), 3))


def test_puct_bandit_exact_visit_counts():
    """PUCT (no noise, temperature 0) on a bandit: legal actions 0 and 1 with priors 0.3 and 0.7
    and rewards r0 = h^-1(1) ~ 2.99 and 0; action 2 is illegal (the highest prior and reward).
    Simulations 1 and 2 follow the prior to action 1 (policy scores 0.3 vs 0.7, then 0.3 / 1 vs
    0.7 / 2) and find reward 0; simulation 3 tries action 0 (0.3 vs 0.7 / 3), whose normalised
    Q of 1 then keeps every later simulation there (at simulation 8: 1 + sqrt(8) 1.25 0.3 / 6 =
    1.18 vs sqrt(8) 1.25 0.7 / 3 = 0.83). 8 simulations: visits 6 and 2, root value the mean of
    the root's own 0 and the 8 returns, 6 r0 / 9."""
    fns = _bandit([np.log(3.0), np.log(7.0), 5.0], [1, 0, 3])
    s_cfg = config_lib.SearchConfig(algorithm="muzero", num_simulations=8)
    run = jax.jit(search.make_search(fns, s_cfg, 0.0, 5), static_argnames="explore")
    mask = jnp.array([[True, True, False]])
    out = run((), jax.random.key(0), jnp.zeros((1, 2)), mask, 0.0, explore=False)
    np.testing.assert_array_equal(np.asarray(out.policy), [[6 / 8, 2 / 8, 0.0]])
    np.testing.assert_array_equal(np.asarray(out.action), [0])
    r0 = _reward(1)
    assert 2.9 < r0 < 3.0
    np.testing.assert_allclose(np.asarray(out.value), [6 * r0 / 9], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.predicted_value), [0.0])
    # the rewards swapped: action 1's normalised Q of 1 from the first simulation on, and the
    # unvisited action 0's Q of 0 (mctx completes it with the minimum), keep all 8 simulations
    # on action 1 (at simulation 8: 1 + sqrt(8) 1.25 0.7 / 8 = 1.31 vs sqrt(8) 1.25 0.3 = 1.06)
    fns = _bandit([np.log(3.0), np.log(7.0), 5.0], [0, 1, 3])
    out = jax.jit(search.make_search(fns, s_cfg, 0.0, 5), static_argnames="explore")(
        (), jax.random.key(0), jnp.zeros((1, 2)), mask, 0.0, explore=False)
    np.testing.assert_array_equal(np.asarray(out.policy), [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(np.asarray(out.action), [1])
    np.testing.assert_allclose(np.asarray(out.value), [8 * r0 / 9], rtol=1e-6)


def test_gumbel_bandit_exact_sequential_halving():
    """Gumbel search without noise on a bandit of 4 legal actions (action 4 illegal: the highest
    prior and reward), m = 4 considered actions and 8 simulations: sequential halving visits
    each once, then the two best by logit + sigma(Q) three times each (mctx's visit sequence
    0, 0, 0, 0, 1, 1, 2, 2). Prior logits 2, 1, 0, 0 and rewards 0, 0, r2 = h^-1(3) ~ 14.9,
    r3 = h^-1(2) ~ 7.95: with sigma = (50 + 1) x 0.1 x the min-max normalised Q, the scores are
    2, 1, 5.1 and 5.1 r3 / r2 ~ 2.7, so actions 2 and 3 go on, and action 2 (5.3 vs 2.8 at 3
    visits) is played. The root value, the mean of its own 0 and the 8 returns,
    (3 r2 + 3 r3) / 9, pins the visit counts; the policy is mctx's improved policy
    softmax(logits + (50 + 3) x 0.1 x Q / r2) over the legal actions."""
    prior = [2.0, 1.0, 0.0, 0.0, 9.0]
    fns = _bandit(prior, [0, 0, 3, 2, 3])
    s_cfg = config_lib.SearchConfig(algorithm="gumbel", num_simulations=8,
                                    max_num_considered_actions=4)
    run = jax.jit(search.make_search(fns, s_cfg, 0.0, 5), static_argnames="explore")
    mask = jnp.array([[True, True, True, True, False]])
    out = run((), jax.random.key(0), jnp.zeros((1, 2)), mask, 0.0, explore=False)
    r2, r3 = _reward(3), _reward(2)
    assert 14.8 < r2 < 14.9 and 7.9 < r3 < 8.0
    np.testing.assert_array_equal(np.asarray(out.action), [2])
    np.testing.assert_allclose(np.asarray(out.value), [(3 * r2 + 3 * r3) / 9], rtol=1e-6)
    logits = np.array(prior[:4]) + 5.3 * np.array([0.0, 0.0, r2, r3]) / r2
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(np.asarray(out.policy), [[*expected, 0.0]], rtol=1e-5, atol=1e-7)


def test_collecting_temperature_shapes_puct_and_not_gumbel():
    """While collecting (`explore`), PUCT samples its visit counts at the temperature, and Gumbel
    plays its sequential halving's pick whatever the temperature (`search.temperature` says so):
    on a bandit of 4 actions with equal priors, 256 roots searched with the same keys at
    T = 1e-3 and T = 4. PUCT plays each root's most visited action at 1e-3 (its visits differ
    from root to root with the Dirichlet noise) and often another at 4; Gumbel's actions are the
    same at both temperatures, and not all one action (its Gumbel noise explores)."""
    fns = _bandit([0.0, 0.0, 0.0, 0.0], [0, 1, 3, 2])
    mask = jnp.ones((256, 4), bool)
    obs, key = jnp.zeros((256, 2)), jax.random.key(3)
    out = {}
    for algorithm in ("muzero", "gumbel"):
        s_cfg = config_lib.SearchConfig(algorithm=algorithm, num_simulations=16,
                                        max_num_considered_actions=4)
        run = jax.jit(search.make_search(fns, s_cfg, 0.0, 5), static_argnames="explore")
        out[algorithm] = [run((), key, obs, mask, t, explore=True) for t in (1e-3, 4.0)]
    cold, hot = out["muzero"]
    visits = np.asarray(cold.policy)
    top = visits == visits.max(axis=1, keepdims=True)
    rows = np.arange(256)
    assert top[rows, np.asarray(cold.action)].all()  # a most visited action, at every root
    assert (~top[rows, np.asarray(hot.action)]).mean() > 0.1  # at T = 4, often another
    cold, hot = out["gumbel"]
    np.testing.assert_array_equal(np.asarray(cold.action), np.asarray(hot.action))
    assert len(set(np.asarray(cold.action).tolist())) > 1


def test_gumbel_temperature_scales_the_collecting_noise():
    """`search.gumbel_temperature`: a collecting Gumbel search's noise is scaled by the acting
    temperature. On a bandit of 4 actions with priors favouring action 3 (Q equal), 256 roots with
    the same keys: at T = 1e-3 every root plays what evaluation (no noise) plays, at T = 4 many
    roots play others; without the option both temperatures play the same, noisy, actions."""
    fns = _bandit([0.0, 0.5, 1.0, 2.0], [0, 0, 0, 0])
    mask = jnp.ones((256, 4), bool)
    obs, key = jnp.zeros((256, 2)), jax.random.key(3)
    for follows in (True, False):
        s_cfg = config_lib.SearchConfig(algorithm="gumbel", num_simulations=16,
                                        max_num_considered_actions=4, gumbel_temperature=follows)
        run = jax.jit(search.make_search(fns, s_cfg, 0.0, 5), static_argnames="explore")
        best = np.asarray(run((), key, obs, mask, 0.0, explore=False).action)
        cold, hot = (np.asarray(run((), key, obs, mask, t, explore=True).action)
                     for t in (1e-3, 4.0))
        if follows:
            np.testing.assert_array_equal(cold, best)
            assert (hot != best).mean() > 0.3
        else:
            np.testing.assert_array_equal(cold, hot)
            assert (cold != best).mean() > 0.1


def test_m_zero_is_v2s_rule_by_action_count():
    """`max_num_considered_actions=0` searches with V2's m for the world's action count: on a
    5-action bandit (m = 4) it is the search with m = 4 written out, bit for bit; on 3 actions
    it considers 2."""
    prior = [2.0, 1.0, 0.0, 0.0, 9.0]
    fns = _bandit(prior, [0, 0, 3, 2, 3])
    mask = jnp.array([[True, True, True, True, False]])
    outs = []
    for m in (0, 4):
        s_cfg = config_lib.SearchConfig(algorithm="gumbel", num_simulations=8,
                                        max_num_considered_actions=m)
        run = jax.jit(search.make_search(fns, s_cfg, 0.0, 5), static_argnames="explore")
        outs.append(run((), jax.random.key(0), jnp.zeros((1, 2)), mask, 1.0, explore=True))
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rule = config_lib.SearchConfig(max_num_considered_actions=0)
    assert search.considered_actions(rule, 3) == 2 and search.considered_actions(rule, 5) == 4
    assert search.considered_actions(config_lib.SearchConfig(max_num_considered_actions=6), 3) == 6
