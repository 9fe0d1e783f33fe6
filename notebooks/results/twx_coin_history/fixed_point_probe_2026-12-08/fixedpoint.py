"""python fixedpoint.py RUN GAMES: RUN's greedy play of `dreamer eval`'s first GAMES evaluation
games, through its own loop (`actor.host_evaluate`, same seed and key); for each lost game, its
last step: whether its last 10 commands were one command, the model's V^, the Q = r^ + g V^(dyn)
of that command and the best Q of the other legal ones."""
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dreamer import actor
from dreamer import agent as agent_lib
from dreamer.collect import host_act, host_memory, make_eval_world
from dreamer.networks import latent_model
from dreamer.train import evaluation_key
from dreamer.transforms import categorical_to_scalar as scalar

run, games = sys.argv[1], int(sys.argv[2])
config = agent_lib.read_config(run)
world = make_eval_world(config, games)
ag = agent_lib.load(run, world, config)
fns, g = latent_model(ag.model), config.train.discount


@jax.jit
def values(params, x):
    """V^ [N] of the observations and the one-step Q [N, A] of every action."""
    latent = fns.represent(params, x)
    logits, value = fns.predict(params, latent)
    n, a = logits.shape
    after = fns.dynamics(params, jax.tree.map(lambda leaf: jnp.repeat(leaf, a, 0), latent),
                         jnp.tile(jnp.arange(a), n))
    prefix, _ = fns.value_prefix(params, after, fns.initial_lstm(n * a))
    _, value_after = fns.predict(params, after)
    q = scalar(prefix, fns.reward_support) + g * scalar(value_after, fns.value_support)
    return scalar(value, fns.value_support), q.reshape(n, a)


steps = []  # per step: (V^, Q, action, mask)


def act(params, key, x, mask, temperature):
    out = host_act(ag.programs.act_eval, ag.mesh, params, key, x, mask, temperature)
    steps.append((*map(np.asarray, values(params, x)), np.asarray(out.action), np.asarray(mask)))
    return out


returns = actor.host_evaluate(world, act, ag.params, evaluation_key(config.seed, ag.ledger.env_steps),
                              games, seed=config.seed + 1_000_003, temperature=0.0,
                              memory=host_memory(ag.model, games))
world.close()
actions = np.stack([s[2] for s in steps])
v, q, a, mask = steps[-1]  # a lost game runs to the time limit, the loop's last step
names, rows = world.spec.action_names, []
for i in np.flatnonzero(returns <= 0):
    same = bool((actions[-10:, i] == a[i]).all())
    other = np.where(mask[i] & (np.arange(q.shape[1]) != a[i]), q[i], -np.inf).max()
    rows.append((same, v[i], q[i, a[i]], g * v[i], other))
    print(f"game {i}: last command {names[a[i]]!r} x10: {same}; V^ {v[i]:.3f}, Q(it) "
          f"{q[i, a[i]]:.3f} (g V^ = {g * v[i]:.3f}), best other Q {other:.3f}")
r = np.array(rows, float)
rep = r[r[:, 0] == 1]
print(f"{run.rstrip('/').split('/')[-1]}: won {returns.mean():.3f} of {games}; lost {len(r)}, "
      f"{len(rep)} ending on one command repeated 10 times; of those, Q(it) > g V^ in "
      f"{int((rep[:, 2] > rep[:, 3]).sum())} (by {np.mean(rep[:, 2] - rep[:, 3]):+.3f} on average, "
      f"V^ {rep[:, 1].mean():.3f}), Q(it) above every other legal command's in "
      f"{int((rep[:, 2] > rep[:, 4]).sum())}")
