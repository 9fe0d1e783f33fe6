"""A trained asterix agent's greedy return with deeper search, and sampled: is search depth or
the model the bottleneck?"""
import sys
from dreamer import agent as agent_lib, config as config_lib
from dreamer.jax_setup import enable_compilation_cache
enable_compilation_cache()
run = sys.argv[1]
base = agent_lib.read_config(run)
for label, overrides, temperature in (("16 sims greedy", [], 0.0), ("16 sims T=1", [], 1.0),
                                      ("64 sims greedy", ["search.num_simulations=64"], 0.0)):
    cfg = config_lib.override(base, overrides)
    agent = agent_lib.load(run, config=cfg)
    r = agent.evaluate(100, temperature)
    print(f"{label}: {r.mean():.2f} +- {r.std() / 10:.2f} (100 episodes)", flush=True)
