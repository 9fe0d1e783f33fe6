"""python evvar.py RUN EPISODES TEMP VARIANT...: RUN's checkpoint evaluated (as `dreamer eval`)
with each VARIANT of its config: 'base', or comma-separated `--set` assignments such as
'search.num_simulations=64' (the trained model is unchanged)."""
import sys
import time

from dreamer import agent as agent_lib
from dreamer.config import override

run, episodes, temperature = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for variant in sys.argv[4:]:
    config = agent_lib.read_config(run)
    if variant != "base":
        config = override(config, variant.split(","))
    world = agent_lib.make_world(config)
    try:
        agent = agent_lib.load(run, world, config)
    finally:
        world.close()  # evaluation builds its own copies
    start = time.time()
    returns = agent.evaluate(episodes, temperature)
    print(f"{run.rstrip('/').split('/')[-1]} [{variant}] T {temperature}: mean {returns.mean():.3f} "
          f"over {episodes} ({time.time() - start:.0f} s)", flush=True)
