"""How well does a trained agent's model predict the reward of the step it takes? On states of its
own greedy play (64 copies x 300 steps): the one-step predicted reward (value prefix after one
dynamics step from the encoded observation, the LSTM fresh) against the world's reward.
Usage: python rewarddiag.py RUN_DIR"""
import sys, numpy as np, jax, jax.numpy as jnp
from dreamer import agent as agent_lib
from dreamer.networks import latent_model
from dreamer.search import make_search_for
from dreamer.transforms import categorical_to_scalar
from dreamer.jax_setup import enable_compilation_cache
enable_compilation_cache()
run = sys.argv[1]
ag = agent_lib.load(run)
world, cfg = ag.world, ag.config
fns = latent_model(ag.model)
search = jax.jit(make_search_for(ag.model, cfg), static_argnames=("explore",))

@jax.jit
def one_step(params, obs, action):
    latent = fns.dynamics(params, fns.represent(params, obs), action)
    logits, _ = fns.value_prefix(params, latent, fns.initial_lstm(obs.shape[0]))
    return categorical_to_scalar(logits, fns.reward_support)

B = 64
state, ts = jax.vmap(world.reset)(jax.random.split(jax.random.key(0), B))
step = jax.jit(jax.vmap(world.step))
pred, real = [], []
for t in range(300):
    k = jax.random.fold_in(jax.random.key(1), t)
    out = search(ag.params, k, ts.observation, ts.action_mask, temperature=0.0, explore=False)
    pred.append(np.asarray(one_step(ag.params, ts.observation, out.action)))
    state, ts = step(state, out.action, jax.random.split(jax.random.fold_in(k, 7), B))
    real.append(np.asarray(ts.reward))
pred, real = np.concatenate(pred), np.concatenate(real)
pos, neg = pred[real > 0], pred[real <= 0]
auc = (np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :])) if len(pos) and len(neg) else float("nan")
print(f"{run}: {len(pos)} rewarded steps of {len(real)} ({len(pos)/len(real):.3%}); predicted reward on them "
      f"mean {pos.mean() if len(pos) else float('nan'):.3f}, on the others {neg.mean():.3f}; AUC {auc:.3f}")
