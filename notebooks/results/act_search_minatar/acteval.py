"""One checkpoint, four ways to act greedily (100 episodes each, the run's evaluation key): the
preset's 16-simulation search, the policy head alone (search.algorithm=none), 64 and 4 simulations.
Usage: python acteval.py RUN_DIR EPISODES"""
import sys, time
from dreamer import agent as agent_lib, config as config_lib
from dreamer.jax_setup import enable_compilation_cache
enable_compilation_cache()
run = sys.argv[1]; n = int(sys.argv[2])
base = agent_lib.read_config(run)
for label, overrides in (("16 sims greedy", []), ("policy head (none)", ["search.algorithm=none"]),
                         ("64 sims greedy", ["search.num_simulations=64"]), ("4 sims greedy", ["search.num_simulations=4"])):
    t = time.time()
    cfg = config_lib.override(base, overrides)
    agent = agent_lib.load(run, config=cfg)
    r = agent.evaluate(n, 0.0)
    print(f"{label}: {r.mean():.2f} +- {r.std() / n**.5:.2f} ({n} episodes, {time.time()-t:.0f} s)", flush=True)
