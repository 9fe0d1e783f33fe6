"""python foldprobe.py RUN EPISODES TEMP FOLD...: RUN's checkpoint evaluated as `dreamer eval`
does (same key, same loop), on the games of each FOLD (train, dev, test) instead of its
evaluation fold."""
import sys
import time

import worlds
from dreamer import agent as agent_lib
from dreamer.collect import evaluate_policy
from dreamer.train import evaluation_key

run, episodes, temperature = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
config = agent_lib.read_config(run)
for fold in sys.argv[4:]:
    world = worlds.make(config.world, num_envs=episodes, **{**config.world_kwargs(), "fold": fold})
    try:
        agent = agent_lib.load(run, world, config)
        start = time.time()
        returns = evaluate_policy(config, agent.programs, agent.mesh, agent.params,
                                  evaluation_key(config.seed, agent.ledger.env_steps), episodes,
                                  temperature, world)
    finally:
        world.close()
    print(f"{run.rstrip('/').split('/')[-1]} fold {fold} T {temperature}: mean "
          f"{returns.mean():.3f} over {episodes} ({time.time() - start:.0f} s)", flush=True)
