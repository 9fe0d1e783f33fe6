"""Where a minatar/breakout run's host loop spends its time: collection, learner phases, pass."""
import sys, time, collections, json, tempfile
import jax
from dreamer import config as config_lib, train as train_lib
from dreamer.jax_setup import enable_compilation_cache
enable_compilation_cache()
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
extra = sys.argv[2:]
cfg = config_lib.override(config_lib.preset("minatar"), [
    "world=minatar/breakout", "seed=7", f"run.real_steps={steps}", "run.eval_episodes=0",
    "run.checkpoint_interval=1000000", "train.train_ratio=1", "train.reanalyse_pass_interval=256",
    "train.target_update_interval=256", *extra])
out = tempfile.mkdtemp()
t = train_lib.Trainer(cfg, out)
times = collections.defaultdict(float); counts = collections.Counter()
WARM = int(__import__("os").environ.get("WARM", 3000))
def wrap(name, fn):
    def timed(*a, **k):
        start = time.perf_counter()
        r = fn(*a, **k)
        jax.block_until_ready((t.replay, t.train_state))
        if t.ledger.env_steps > WARM:
            times[name] += time.perf_counter() - start; counts[name] += 1
        return r
    return timed
t._collect_iteration = wrap("collect", t._collect_iteration)
t.train_phase = wrap("learner phase", t.train_phase)
t.reanalyse_pass = wrap("pass", t.reanalyse_pass)
start = time.perf_counter()
t.run(progress=False)
total = time.perf_counter() - start
print(json.dumps({"total_s": round(total, 1), "after_warm": {k: [round(v, 2), counts[k]] for k, v in times.items()},
                  "stored_rows_end": t.stored_rows(), "updates": t.ledger.updates}))
