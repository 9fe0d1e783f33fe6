"""Does the learned model order Freeway's actions? On states of the agent's own greedy play
(64 copies, sampled every 25 steps over 300), compare the search's root Q-values with Monte-Carlo
Q-values from the real world: each action taken once, then the policy head's greedy action for
H steps, on the same world draws for every first action, discounted by the run's gamma and bootstrapped with the model's value at step H (the same
continuation for every first action, so the gaps between actions are what the first action buys).
Each Monte-Carlo value is the mean of R rollouts on R sets of world draws (the same R sets for
every first action). Usage: python qgapdiag.py RUN_DIR [H] [R]"""
import sys

import jax
import jax.numpy as jnp
import mctx
import numpy as np

from dreamer import agent as agent_lib
from dreamer import config as config_lib
from dreamer.jax_setup import enable_compilation_cache
from dreamer.search import (
    considered_actions,
    latent_model,
    make_recurrent_fn,
    make_search_for,
    qtransform_for,
    root,
)

enable_compilation_cache()
run = sys.argv[1]
H = int(sys.argv[2]) if len(sys.argv) > 2 else 200
R = int(sys.argv[3]) if len(sys.argv) > 3 else 1
ag = agent_lib.load(run)
world, cfg = ag.world, ag.config
fns = latent_model(ag.model)
gamma = cfg.train.discount
recurrent_fn = make_recurrent_fn(fns, gamma, cfg.train.value_prefix_horizon)
search = jax.jit(make_search_for(ag.model, cfg), static_argnames=("explore",))
head = jax.jit(make_search_for(ag.model, config_lib.override(cfg, ["search.algorithm=none", "search.q_normalisation=node"])),
               static_argnames=("explore",))
A = world.spec.num_actions


@jax.jit
def tree_stats(params, key, obs, mask):
    # the run's Gumbel search as `dreamer.search.make_search` builds it, without root noise; called
    # here directly because its output does not carry the tree
    assert cfg.search.algorithm == "gumbel", cfg.search.algorithm
    out = mctx.gumbel_muzero_policy(
        params, key, root(fns, params, obs), recurrent_fn, cfg.search.num_simulations,
        invalid_actions=~mask, max_num_considered_actions=considered_actions(cfg.search, A),
        gumbel_scale=0.0,
        qtransform=qtransform_for(cfg.search))
    tree = out.search_tree
    q = tree.qvalues(jnp.full((obs.shape[0],), tree.ROOT_INDEX))
    visits = tree.children_visits[:, tree.ROOT_INDEX]
    prior = jax.nn.softmax(tree.children_prior_logits[:, tree.ROOT_INDEX])
    return q, visits, prior, out.action_weights


step = jax.jit(jax.vmap(world.step))


@jax.jit
def value_of(params, obs):
    return root(fns, params, obs).value


def mc_q(state, key):
    """[B, A] discounted return of each first action, then the head's greedy action for H steps,
    averaged over R rollouts."""
    B = jax.tree.leaves(state)[0].shape[0]
    M = B * R * A  # state-major, then draw set, then first action
    rep = jax.tree.map(lambda x: jnp.repeat(x, R * A, axis=0), state)
    first = jnp.tile(jnp.arange(A), B * R)
    ret, disc, alive = np.zeros(M), np.ones(M), np.ones(M, bool)
    action = first
    for t in range(H):
        k = jax.random.fold_in(key, t)
        # the same world draws for the A copies of a state: they differ by the first action only
        rep, ts = step(rep, action, jnp.repeat(jax.random.split(k, B * R), A, axis=0))
        ret += alive * disc * np.asarray(ts.reward)
        disc *= gamma
        alive &= ~np.asarray(ts.terminated | ts.truncated)
        action = head(ag.params, k, ts.observation, ts.action_mask, temperature=0.0,
                      explore=False).action
    ret += alive * disc * np.asarray(value_of(ag.params, ts.observation))
    return ret.reshape(B, R, A).mean(1)


B = 64
key = jax.random.key(0)
state, ts = jax.vmap(world.reset)(jax.random.split(key, B))
rows = []
for t in range(300):
    k = jax.random.fold_in(jax.random.key(1), t)
    if t % 25 == 24:
        q, visits, prior, improved = map(np.asarray, tree_stats(ag.params, k, ts.observation,
                                                                 ts.action_mask))
        mc = mc_q(state, jax.random.fold_in(k, 3))
        rows.append((q, visits, prior, improved, mc))
    out = search(ag.params, k, ts.observation, ts.action_mask, temperature=0.0, explore=False)
    state, ts = step(state, out.action, jax.random.split(jax.random.fold_in(k, 7), B))
q, visits, prior, improved, mc = (np.concatenate(x) for x in zip(*rows, strict=True))
n = len(q)
mc_gap = mc.max(1) - mc.min(1)
q_gap = q.max(1) - q.min(1)
mc_best, q_best = mc.argmax(1), q.argmax(1)
decisive = mc_gap > 0.05  # states where the first action matters in the real world
print(f"{run}: {n} states, H={H}, R={R}, gamma={gamma}")
print(f"  Monte-Carlo Q gap (best - worst action): median {np.median(mc_gap):.4f}, "
      f"p90 {np.percentile(mc_gap, 90):.4f}; model root Q gap: median {np.median(q_gap):.4f}, "
      f"p90 {np.percentile(q_gap, 90):.4f}")
print(f"  model's best action == Monte-Carlo best: {np.mean(q_best == mc_best):.3f} of all states, "
      f"{np.mean((q_best == mc_best)[decisive]):.3f} of the {decisive.sum()} where the MC gap > 0.05")
print(f"  improved policy's top action == MC best: {np.mean(improved.argmax(1) == mc_best):.3f}; "
      f"prior's: {np.mean(prior.argmax(1) == mc_best):.3f}")
print(f"  improved-policy max prob median {np.median(improved.max(1)):.3f}; prior max median "
      f"{np.median(prior.max(1)):.3f}; improved top != prior top on {np.mean(improved.argmax(1) != prior.argmax(1)):.3f}")
print(f"  mean MC Q per action {np.round(mc.mean(0), 3)}; mean model Q per action {np.round(q.mean(0), 3)}")
print(f"  corr(model Q - mean, MC Q - mean) over state-actions: "
      f"{np.corrcoef((q - q.mean(1, keepdims=True)).ravel(), (mc - mc.mean(1, keepdims=True)).ravel())[0, 1]:.3f}")
