"""On states of the agent's own greedy play (64 copies x 300 steps, the search acting): how often
the preset's search picks the policy head's argmax, and how peaked the prior and the search's
improved policy are. Usage: python priordiag.py RUN_DIR"""
import sys, numpy as np, jax, jax.numpy as jnp
from dreamer import agent as agent_lib, config as config_lib
from dreamer.search import make_search_for
from dreamer.jax_setup import enable_compilation_cache
enable_compilation_cache()
run = sys.argv[1]
ag = agent_lib.load(run)
world, cfg = ag.world, ag.config
search = jax.jit(make_search_for(ag.model, cfg), static_argnames=("explore",))
head = jax.jit(make_search_for(ag.model, config_lib.override(cfg, ["search.algorithm=none"])), static_argnames=("explore",))
B = 64
keys = jax.random.split(jax.random.key(0), B)
state, ts = jax.vmap(world.reset)(keys)
step = jax.jit(jax.vmap(world.step))
agree, pmax, imax, n = 0, [], [], 0
for t in range(300):
    k = jax.random.fold_in(jax.random.key(1), t)
    out = search(ag.params, k, ts.observation, ts.action_mask, temperature=0.0, explore=False)
    h = head(ag.params, k, ts.observation, ts.action_mask, temperature=0.0, explore=False)
    agree += int((out.action == h.action).sum()); n += B
    pmax.append(np.asarray(h.policy.max(-1))); imax.append(np.asarray(out.policy.max(-1)))
    state, ts = step(state, out.action, jax.random.split(jax.random.fold_in(k, 7), B))
pmax, imax = np.concatenate(pmax), np.concatenate(imax)
print(f"{run}: search action == prior argmax on {agree/n:.3f} of {n} states; prior max prob median {np.median(pmax):.3f} (p10 {np.percentile(pmax,10):.3f}); improved-policy max median {np.median(imax):.3f}")
