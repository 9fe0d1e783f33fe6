"""python fixedpoint.py RUN GAMES: RUN's greedy play of GAMES evaluation games (dreamer eval's
first GAMES, with its key); for each lost game, its last step: whether the last 10 commands were
one command, the model's V^, the Q = r^ + g V^(dyn) of that command and the best Q of the others."""
import sys, jax, jax.numpy as jnp, numpy as np
from dreamer import agent as agent_lib
from dreamer.actor import host_next_memory, initial_memory
from dreamer.networks import agent_input, latent_model
from dreamer.transforms import categorical_to_scalar as s
from dreamer.collect import make_eval_world
from dreamer.train import evaluation_key
run, games = sys.argv[1], int(sys.argv[2])
config = agent_lib.read_config(run)
world = make_eval_world(config, games)
ag = agent_lib.load(run, world, config)
fns = latent_model(ag.model); g = config.train.discount
names = world.spec.action_names
@jax.jit
def probe(p, x):
    lat = fns.represent(p, x)
    pl, vl = fns.predict(p, lat)
    N, A = pl.shape
    lat_a = jax.tree.map(lambda l: jnp.repeat(l, A, 0), lat)
    dyn = fns.dynamics(p, lat_a, jnp.tile(jnp.arange(A), N))
    pre, _ = fns.value_prefix(p, dyn, fns.initial_lstm(N * A))
    _, vdl = fns.predict(p, dyn)
    q = (s(pre, fns.reward_support) + g * s(vdl, fns.value_support)).reshape(N, A)
    return s(vl, fns.value_support), q
key = evaluation_key(config.seed, ag.ledger.env_steps)
memory = initial_memory(ag.model, games); memory = None if memory is None else np.asarray(memory)
ts = world.reset(config.seed)
ret = np.zeros(games); done = np.zeros(games, bool); acts = []
for t in range(world.spec.max_episode_steps):
    key, k = jax.random.split(key)
    x = agent_input(ts.observation, memory)
    v, q = map(np.asarray, probe(ag.params, x))
    out = ag.programs.act_eval(ag.params, k, x, ts.action_mask, np.float32(0.0))
    a = np.asarray(out.action); acts.append(a)
    mask = np.asarray(ts.action_mask)
    last = (v, q, a, mask)
    ts = world.step(a)
    ret += np.where(done, 0, ts.reward); done |= ts.terminated | ts.truncated
    memory = host_next_memory(out.memory, ts.terminated | ts.truncated)
    if done.all(): break
acts = np.stack(acts)
v, q, a, mask = last
rows = []
for i in range(games):
    if ret[i] > 0: continue
    same = bool((acts[-10:, i] == acts[-1, i]).all())
    qa = q[i, a[i]]; other = np.where(mask[i] & (np.arange(q.shape[1]) != a[i]), q[i], -np.inf).max()
    rows.append((same, v[i], qa, other))
    print(f"game {i}: last command {names[a[i]]!r} x10: {same}; V^ {v[i]:.3f}, Q(it) {qa:.3f} (g V^ = {g*v[i]:.3f}), best other Q {other:.3f}")
rows = np.array(rows, float)
print(f"{run.split('/')[-1]}: won {ret.mean():.3f} of {games}; lost {len(rows)}, ending on one repeated command {int(rows[:,0].sum())}; "
      f"mean V^ {rows[:,1].mean():.3f}, Q(repeated) {rows[:,2].mean():.3f}, best other Q {rows[:,3].mean():.3f}, Q gap {np.mean(rows[:,2]-rows[:,3]):.3f}")
world.close()
