"""python evvar.py RUN EPISODES TEMP VARIANT... ; VARIANT = 'base' or 'sec.field=val,sec.field=val'.
Evaluates RUN's checkpoint with eval-time config overrides (the model is unchanged)."""
import dataclasses, sys, time, ast
import worlds
from dreamer import agent as agent_lib
run, episodes, temp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def parse(v):
    try: return ast.literal_eval(v)
    except Exception: return v
for variant in sys.argv[4:]:
    config = agent_lib.read_config(run)
    if variant != "base":
        for kv in variant.split(","):
            k, v = kv.split("=")
            sec, field = k.split(".")
            config = dataclasses.replace(config, **{sec: dataclasses.replace(getattr(config, sec), **{field: parse(v)})})
    world = worlds.make(config.world, **config.world_kwargs())
    t = time.time()
    agent = agent_lib.load(run, world, config)
    r = agent.evaluate(episodes, temp)
    print(f"{run.split('/')[-1]} [{variant}] T {temp}: mean {r.mean():.3f} over {episodes} ({time.time()-t:.0f} s)", flush=True)
    world.close() if hasattr(world, "close") else None
