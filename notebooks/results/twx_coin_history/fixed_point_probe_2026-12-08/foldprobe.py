"""python foldprobe.py RUN EPISODES TEMP FOLD...: RUN's checkpoint played on each fold's games."""
import sys, time, numpy as np, worlds
from dreamer import agent as agent_lib
from dreamer.collect import evaluate_policy
from dreamer.train import evaluation_key
run, episodes, temp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
config = agent_lib.read_config(run)
for fold in sys.argv[4:]:
    world = worlds.make(config.world, num_envs=episodes, **{**config.world_kwargs(), "fold": fold})
    ag = agent_lib.load(run, world, config)
    t = time.time()
    r = evaluate_policy(config, ag.programs, ag.mesh, ag.params, evaluation_key(config.seed, ag.ledger.env_steps), episodes, temp, world)
    print(f"{run.split('/')[-1]} fold {fold} T {temp}: mean {r.mean():.3f} over {episodes} ({time.time()-t:.0f} s)", flush=True)
    world.close()
