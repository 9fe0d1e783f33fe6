"""What a Freeway agent plays at each of its checkpoints, on its own greedy play.
Usage: python falldiag.py RUN_DIR T STEP [STEP ...]  (T = 2500 plays whole episodes; STEP "up"
plays "up" at every step instead, on the same world draws: the reference)

For each checkpoint: 64 copies played greedily (temperature 0, no root noise) by the run's search
for T steps, from the same reset keys and world draws for every checkpoint. Prints the return per
copy, the search's and the policy head's action frequencies (noop, up, down), how often the search
departs from the head's argmax, the head's mean top probability, its mean root value, the chicken's
mean row (9 = the start, 0 = across), hits (back to row 9 from above row 8 without scoring) per
copy, and the share of copies whose chicken stayed on one row for their last 200 steps ("stuck"),
by row; then the copies' returns, sorted."""
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dreamer import agent as agent_lib
from dreamer import checkpoint as checkpoint_lib
from dreamer.jax_setup import enable_compilation_cache
from dreamer.search import latent_model, make_search_for, root

enable_compilation_cache()
run, T, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
B = 64


def find(state, name):
    """The leaf of `state` whose path names `name` (the world may be wrapped, e.g. by history)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        if name in jax.tree_util.keystr(path):
            return leaf
    raise KeyError(name)


def play(agent, always_up=False):
    world, fns = agent.world, latent_model(agent.model)
    search = jax.jit(make_search_for(agent.model, agent.config), static_argnames=("explore",))
    head = jax.jit(lambda params, obs: root(fns, params, obs))
    step = jax.jit(jax.vmap(world.step))
    state, ts = jax.vmap(world.reset)(jax.random.split(jax.random.key(0), B))
    actions, head_actions, head_top, values, rows = [], [], [], [], []
    returns, hits = np.zeros(B), 0
    row_before = np.asarray(find(state, "chicken_y"))
    for t in range(T):
        key = jax.random.fold_in(jax.random.key(1), t)
        action = search(agent.params, key, ts.observation, ts.action_mask, temperature=0.0,
                        explore=False).action
        if always_up:
            action = jnp.ones_like(action)
        prior = head(agent.params, ts.observation)
        probs = jax.nn.softmax(jnp.where(ts.action_mask, prior.prior_logits, -jnp.inf), -1)
        actions.append(np.asarray(action))
        head_actions.append(np.asarray(probs.argmax(-1)))
        head_top.append(np.asarray(probs.max(-1)))
        values.append(np.asarray(prior.value))
        state, ts = step(state, action, jax.random.split(jax.random.fold_in(key, 7), B))
        row, reward = np.asarray(find(state, "chicken_y")), np.asarray(ts.reward)
        returns += reward
        hits += int(((row == 9) & (row_before < 8) & (reward == 0)).sum())
        rows.append(row)
        row_before = row
    rows = np.stack(rows)  # [T, B]
    stuck = (rows[-200:] == rows[-1]).all(0)
    share = lambda a: np.round(np.bincount(np.concatenate(a), minlength=3)[:3] / (B * T), 3)  # noqa: E731
    depart = np.mean(np.stack(actions) != np.stack(head_actions))
    print(f"{'up' if always_up else agent.ledger.env_steps:>6}  {returns.mean():8.2f}  {share(actions)}  "
          f"{share(head_actions)}  {depart:.3f}  {np.mean(head_top):.3f}  {np.mean(values):.2f}  "
          f"{rows.mean():.2f}  {hits / B:.1f}  {stuck.mean():.3f} {np.bincount(rows[-1][stuck], minlength=10)}")
    print("        returns:", np.sort(returns).astype(int).tolist())


print(f"{run}: {B} copies x {T} greedy steps per checkpoint")
print("step    ret/copy  search(noop,up,down)  head(noop,up,down)  depart  headtop  value  row  "
      "hits  stuck (by row)")
for chosen in steps:
    if chosen != "up":
        checkpoint_lib.Checkpointer.latest_step = lambda self, chosen=int(chosen): chosen  # this one
    play(agent_lib.load(run), always_up=chosen == "up")
