"""`dreamer bench worlds|search|train|dream|gpu`: throughput measured in one process, printed as a table
followed by one JSON line. Times exclude compilation (each function runs once before timing)."""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from dreamer import memory


def _timed(fn, repeats: int, *args, min_seconds: float = 0.0) -> float:
    """Seconds per call of `fn(*args)` after one warm-up call: the best of `repeats` windows,
    each the mean over back-to-back calls for at least `min_seconds` (at least one call)."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while True:
            jax.block_until_ready(fn(*args))
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


def _learner(model, cfg, updates: int, tstate, rstate, key, age):
    """The learner program as the trainer builds it (train state and replay donated), compiled;
    returns it, its compile seconds and its peak bytes (`memory.program_bytes`)."""
    from dreamer import learner

    t0 = time.perf_counter()
    compiled = jax.jit(learner.make_train_many(model, cfg, updates), donate_argnums=(0, 1)).lower(
        tstate, rstate, key, age).compile()
    return compiled, time.perf_counter() - t0, memory.program_bytes(compiled)["peak"]


def _timed_donating(compiled, repeats: int, tstate, rstate, *args) -> float:
    """Seconds per call of a program that consumes its first two arguments: the best of
    `repeats` calls after a warm-up, each on fresh copies made outside the timed window."""
    best = float("inf")
    for i in range(repeats + 1):
        fresh = jax.block_until_ready(jax.tree.map(jnp.copy, (tstate, rstate)))
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*fresh, *args))
        if i:
            best = min(best, time.perf_counter() - t0)
    return best


def bench_worlds(quick: bool) -> dict:
    import worlds

    names = ["catch", "cartpole", "minatar/asterix", "minatar/breakout", "minatar/freeway",
             "minatar/seaquest", "minatar/space_invaders", "text/coin", "text/quest"]
    if quick:
        names = ["catch", "cartpole", "text/coin"]
    batches = (16,) if quick else (1, 16, 256)
    steps, repeats = (100, 2) if quick else (1000, 3)
    results, versus = {}, {}
    print(f"{'world':28s}" + "".join(f"{'B=' + str(b):>14s}" for b in batches)
          + f"{'vs vmap(step)':>16s}   (steps/s; the ratio at B={batches[-1]})")
    for name in names:
        world = worlds.make(name)
        row = {}
        for batch in batches:
            seconds = _timed(_world_rollout(world, batch, steps, batched=True), repeats,
                             jax.random.key(0))
            row[batch] = steps * batch / seconds
        # the baseline, same process: the auto-reset computed for every copy, as under vmap
        baseline = _timed(_world_rollout(world, batches[-1], steps, batched=False), repeats,
                          jax.random.key(0))
        versus[name] = row[batches[-1]] * baseline / (steps * batches[-1])
        results[name] = row
        print(f"{name:28s}" + "".join(f"{row[b]:14,.0f}" for b in batches)
              + f"{versus[name]:15.2f}x")
    host = {}
    host_names = ["atari/pong", "gym:CartPole-v1"]
    if not quick:
        host_names.append("twx/coin")
    for name in host_names:
        for num_envs in ((1,) if quick else (1, 8)):
            try:
                world = worlds.make(name, num_envs=num_envs)
            except worlds.MissingExtraError as error:  # twx without the `text` extra or Java
                print(f"{name:28s}{'skipped':>14s}   ({error})")
                break
            ts = world.reset(0)
            n = 50 if quick else 1000
            rng = np.random.default_rng(0)
            t0 = time.perf_counter()
            for _ in range(n):  # uniform over each copy's valid actions, drawn vectorised
                ts = world.step((rng.random(ts.action_mask.shape) * ts.action_mask).argmax(-1))
            rate = n * num_envs / (time.perf_counter() - t0)
            world.close()
            host[f"{name} x{num_envs}"] = rate
            print(f"{name + ' x' + str(num_envs):28s}{rate:14,.0f}   (host vector env)")
    return {"jax_worlds_steps_per_s": results, "step_batch_vs_vmap_step": versus,
            "host_worlds_steps_per_s": host}


def _world_rollout(world, batch: int, steps: int, batched: bool):
    """A jitted `key -> scalar` that resets `batch` copies and takes `steps` uniform-random actions,
    through `world.step_batch` or (`batched=False`) through `jax.vmap(world.step)`."""
    step = world.step_batch if batched else jax.vmap(world.step)

    def rollout(key):
        state, _ = jax.vmap(world.reset)(jax.random.split(key, batch))

        def body(state, key):
            a_key, s_key = jax.random.split(key)
            action = jax.random.randint(a_key, (batch,), 0, world.spec.num_actions)
            state, ts = step(state, action, jax.random.split(s_key, batch))
            # depend on observations and flags too, so XLA cannot drop the dynamics
            return state, (ts.reward.sum() + ts.observation.astype(jnp.float32).sum()
                           + ts.terminated.sum())

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1].sum()

    return jax.jit(rollout)


def raw_mctx_search(fns, params, key, observation, config, discount: float) -> jax.Array:
    """A baseline for `dreamer bench search`: the same network, plain per-step rewards; [B]
    actions for observations [B, *obs] from the latent model `fns` (`networks.LatentModel`).

    Uses the model's value prefix directly as the reward, with no reset bookkeeping, in mctx's
    own search at its defaults (`search.plain_mctx_action`, which calls mctx, so that
    `dreamer.search` stays the only module importing it): what a user would write with mctx alone
    and the network. It differs from the run's search (`search.make_search`) only by the
    value-prefix handling (and the masks, noise and Q normalisation mctx's defaults leave out).
    """
    from dreamer import search
    from dreamer.transforms import categorical_to_scalar

    def step(params, action, embedding):
        latent, lstm = embedding
        latent = fns.dynamics(params, latent, action)
        prefix_logits, lstm = fns.value_prefix(params, latent, lstm)
        policy_logits, value_logits = fns.predict(params, latent)
        return (categorical_to_scalar(prefix_logits, fns.reward_support),
                jnp.full(action.shape, discount, jnp.float32), policy_logits,
                categorical_to_scalar(value_logits, fns.value_support), (latent, lstm))

    latent = fns.represent(params, observation)
    policy_logits, value_logits = fns.predict(params, latent)
    value = categorical_to_scalar(value_logits, fns.value_support)
    embedding = (latent, fns.initial_lstm(observation.shape[0]))
    return search.plain_mctx_action(params, key, policy_logits, value, embedding, step, config)


def bench_search(quick: bool) -> dict:
    import worlds
    from dreamer import config as config_lib
    from dreamer import learner, search
    from dreamer.networks import latent_model, make_model

    cfg = config_lib.minatar()
    world = worlds.make("minatar/breakout")
    model = make_model(cfg.model, world.spec)
    fns = latent_model(model)
    obs = np.zeros(world.spec.observation_shape, np.float32)
    params = learner.init_train_state(model, cfg, jax.random.key(0), obs).params
    cases = [(16, 16)] if quick else [(1, 16), (16, 16), (256, 16), (1, 50), (16, 50),
                                              (256, 50)]
    rows = []
    print(f"{'batch':>6s}{'sims':>6s}{'ours sims/s':>14s}{'raw mctx sims/s':>17s}{'ratio':>8s}")
    for batch, sims in cases:
        # PUCT (mctx.muzero_policy) whatever the preset searches with, so figures stay comparable
        s_cfg = config_lib.dataclasses.replace(cfg.search, algorithm="muzero", num_simulations=sims)
        observation = jax.random.uniform(jax.random.key(1), (batch, *world.spec.observation_shape))
        mask = jnp.ones((batch, world.spec.num_actions), bool)
        ours_search = search.make_search(fns, s_cfg, cfg.train.discount,
                                         cfg.train.value_prefix_horizon)
        ours = jax.jit(lambda p, k, o, m, run=ours_search: run(p, k, o, m).action)
        raw = jax.jit(lambda p, k, o, s_cfg=s_cfg: raw_mctx_search(
            fns, p, k, o, s_cfg, cfg.train.discount))
        # Interleaved rounds, so machine noise hits both alike; each timing is the mean over at
        # least half a second of calls (single calls of a few ms read up to 20% apart).
        window = 0.0 if quick else 0.5
        key = jax.random.key(2)
        t_ours = t_raw = float("inf")
        for _ in range(1 if quick else 3):
            t_ours = min(t_ours, _timed(ours, 2, params, key, observation, mask,
                                        min_seconds=window))
            t_raw = min(t_raw, _timed(raw, 2, params, key, observation, min_seconds=window))
        ours_rate, raw_rate = batch * sims / t_ours, batch * sims / t_raw
        ratio = ours_rate / raw_rate
        rows.append({"batch": batch, "simulations": sims, "ours_sims_per_s": ours_rate,
                     "raw_mctx_sims_per_s": raw_rate, "throughput_ratio_vs_raw_mctx": ratio})
        print(f"{batch:6d}{sims:6d}{ours_rate:14,.0f}{raw_rate:17,.0f}{ratio:8.2f}")
    return {"network": "minatar preset on minatar/breakout", "search": "muzero", "cases": rows}


LEARNER_BATCHES = (64, 128, 256, 512, 1024)
"""`bench train`'s batch sizes for the `minatar` learner (128 is the preset's): the cost per
sampled position against batch (issue 20: bigger batches should cost less per sample)."""


def _minatar_case(batch: int) -> str:
    """The name of `bench train`'s `minatar` learner case at `batch`: "minatar" at the preset's."""
    from dreamer import config as config_lib

    return "minatar" if batch == config_lib.minatar().train.batch_size else f"minatar-{batch}"

# The `minatar` preset's learner before its network became an MLP (2026-12-04): the conv stack
# (16 channels, one residual block) at EfficientZero's budget, batch 256 with 99% of policy
# targets reanalysed in every update; issue 20 measured 0.29 updates/s on one core.
MINATAR_CONV_BASELINE = ("model.encoder=conv", "model.channels=16", "model.num_blocks=1",
                         "train.batch_size=256", "train.reanalyse_fraction=0.99")


def _train_case(name, cfg, world_name, quick: bool) -> dict:
    """One learner case: the trainer's learner program for `cfg` on random replay rows, timed;
    its model steps (the ledger's count: unrolled dynamics plus reanalysis search) per second
    against the limit, the same network's best recurrent throughput in this process."""
    import worlds
    from dreamer import learner
    from dreamer import replay as replay_lib
    from dreamer.networks import make_model

    atari = world_name.startswith("atari/")  # sized down below: one update takes seconds
    world = worlds.make(world_name)
    spec = world.spec
    world.close()
    model = make_model(cfg.model, spec)
    n_streams, length = 2, min(cfg.replay.capacity, 256)
    key = jax.random.key(0)
    rows = _random_rows(key, length, n_streams, spec)
    rstate = replay_lib.add(replay_lib.init(rows, length), rows)
    tstate = learner.init_train_state(model, cfg, key, np.asarray(rows.observation[0, 0]))
    big = cfg.train.batch_size * cfg.train.reanalyse_fraction >= 128
    # one update where one takes seconds (atari100k on a CPU takes minutes: `bench gpu` times a
    # whole learner phase there; the conv baseline at batch 256 about 3.5 s)
    updates = 2 if quick else (1 if atari or big else 8)
    age = jnp.float32(1e9)
    train_many, compile_s, peak = _learner(model, cfg, updates, tstate, rstate, key, age)
    seconds = _timed_donating(train_many, 2, tstate, rstate, key, age)
    cost = learner.update_cost(cfg)
    steps_per_update = cost.unroll + cost.reanalyse
    batches = (64, 256) if quick or atari else (64, 256, 1024, 4096)
    limit, limit_batch, _ = model_step_limit(model, tstate.params, spec, cfg, batches,
                                             2 if quick or atari else 16, 1 if quick else 3)
    rate = updates / seconds
    case = {"world": world_name, "batch_size": cfg.train.batch_size,
            "fresh_share": learner.reanalysed_count(cfg) / cfg.train.batch_size,
            # where fresh policy targets come from: searched inside the update, or read from the
            # replay after a buffer-wide pass (timed apart, in `fresh_targets`)
            "fresh_from": ("update" if learner.reanalysed_count(cfg) else
                           "pass" if cfg.train.reanalyse_pass_interval else "none"),
            "updates_per_s": rate, "sampled_positions_per_s": rate * cfg.train.batch_size,
            "model_steps_per_update": steps_per_update,
            "model_steps_per_s": rate * steps_per_update,
            "limit_model_steps_per_s": limit, "limit_batch": limit_batch,
            "efficiency": rate * steps_per_update / limit,
            "compile_s": compile_s, "peak_bytes": peak, "updates_per_call": updates}
    print(f"{name:14s}{world_name:18s} batch {cfg.train.batch_size:4d} "
          f"{_fresh_label(case)}: {rate:8.3g} updates/s, "
          f"{case['sampled_positions_per_s']:8,.0f} positions/s, {case['efficiency']:.2f} x limit "
          f"(compile {compile_s:.1f} s, peak {memory.size(peak)}{_of_device()})")
    return case


def _fresh_label(case: dict) -> str:
    if case["fresh_from"] == "pass":
        return "fresh from the pass"
    return f"fresh {case['fresh_share']:4.2f} in update"


def bench_train(quick: bool) -> dict:
    """The learner per preset (`cases.<preset>`: updates/s, sampled positions/s, model steps/s
    and the efficiency against the network's limit; `atari100k` on an accelerator only; the
    `minatar` learner at each of LEARNER_BATCHES, summed up in `batch_curve`), the `minatar`
    preset against the conv learner it replaced (`MINATAR_CONV_BASELINE`, same process), and fresh targets by pass or
    per update (`fresh_targets`)."""
    from dreamer import config as config_lib

    # (case, preset, world, overrides)
    cases = [("small", "small", "cartpole", ())]
    if quick:
        cases = [("small", "small", "cartpole", ("train.batch_size=16", "replay.capacity=64"))]
    else:
        cases += [*[(_minatar_case(b), "minatar", "minatar/breakout", (f"train.batch_size={b}",))
                    for b in LEARNER_BATCHES],
                  ("minatar-conv", "minatar", "minatar/breakout", MINATAR_CONV_BASELINE)]
        if jax.default_backend() != "cpu":
            cases.append(("atari100k", "atari100k", "atari/pong", ()))
        else:  # one update searches ~76k model steps of a 96x96 ResNet: minutes on a CPU core
            print("atari100k     skipped on the CPU (one update takes minutes); `dreamer bench "
                  "gpu` times its learner on an accelerator")
    results = {}
    for name, preset, world_name, sets in cases:
        cfg = config_lib.override(config_lib.preset(preset), list(sets))
        results[name] = _train_case(name, cfg, world_name, quick)
    out = {"cases": results}
    if "minatar-conv" in results:
        base = results["minatar-conv"]["updates_per_s"]
        out["vs_minatar_conv"] = {
            name: {"updates": results[name]["updates_per_s"] / base,
                   "positions": results[name]["sampled_positions_per_s"]
                   / results["minatar-conv"]["sampled_positions_per_s"]}
            for name in ("minatar", "minatar-256")}
        for name, ratio in out["vs_minatar_conv"].items():
            print(f"{name} vs the conv learner at batch 256 (same process): "
                  f"{ratio['updates']:.1f}x updates/s, {ratio['positions']:.1f}x positions/s")
    if "minatar" in results:  # the `minatar` learner's cost per sampled position by batch
        curve = {b: results[_minatar_case(b)]["sampled_positions_per_s"] for b in LEARNER_BATCHES}
        out["batch_curve"] = {"world": "minatar/breakout", "preset": "minatar",
                              "sampled_positions_per_s": dict(sorted(curve.items()))}
        print("minatar learner, sampled positions/s by batch: " + ", ".join(
            f"{b}: {r:,.0f}" for b, r in sorted(curve.items())))
    out["fresh_targets"] = _fresh_targets(quick)
    return out


def _of_device() -> str:
    limit = memory.device_limit()
    return f" of the device's {memory.size(limit)}" if limit else ""


def _fresh_targets(quick: bool) -> dict:
    """Fresh policy targets for 99% of sampled positions at the `minatar` preset (batch 256 on
    minatar/breakout), two ways, same process: reanalysis inside every update
    (`train.reanalyse_fraction=0.99`), or the learner without it plus buffer-wide pass searches
    (`dreamer.reanalyse`) at the pass's measured rate. The pass figure charges one pass search
    to every fresh sampled position, as if no row were sampled twice between two passes: a
    lower bound on the pass path's updates/s."""
    import worlds
    from dreamer import config as config_lib
    from dreamer import learner, reanalyse
    from dreamer import replay as replay_lib
    from dreamer.networks import make_model

    batch, updates, length, streams = (16, 2, 64, 2) if quick else (256, 3, 1024, 16)
    base = config_lib.override(config_lib.minatar(), [f"train.batch_size={batch}"])
    spec = worlds.make("minatar/breakout").spec
    model = make_model(base.model, spec)
    key = jax.random.key(0)
    rows = _random_rows(key, length, streams, spec)
    rstate = replay_lib.add(replay_lib.init(rows, length), rows)
    tstate = learner.init_train_state(model, base, key, np.asarray(rows.observation[0, 0]))
    age = jnp.float32(1e9)
    rates = {}
    for name, fraction in (("per_update", 0.99), ("no_reanalysis", 0.0)):
        cfg = config_lib.override(base, [f"train.reanalyse_fraction={fraction}"])
        train_many = jax.jit(learner.make_train_many(model, cfg, updates))
        rates[name] = updates / _timed(train_many, 1 if quick else 2, tstate, rstate, key, age)
    roots = reanalyse.pass_chunks(base, length * streams) * base.train.reanalyse_pass_chunk
    run = jax.jit(reanalyse.make_reanalyse_pass(model, base))
    pass_seconds = _timed(run, 1 if quick else 2, tstate, rstate, key,
                          jnp.int32(reanalyse.pass_chunks(base, length * streams)))
    roots_per_s = roots / pass_seconds
    fresh = round(0.99 * batch) * (base.train.unroll_steps + 1)  # positions per update
    with_pass = 1.0 / (1.0 / rates["no_reanalysis"] + fresh / roots_per_s)
    out = {"world": "minatar/breakout", "batch_size": batch, "fresh_share": 0.99,
           "per_update_reanalysis_updates_per_s": rates["per_update"],
           "no_reanalysis_updates_per_s": rates["no_reanalysis"],
           "pass_roots_per_s": roots_per_s, "pass_updates_per_s": with_pass,
           "pass_vs_per_update": with_pass / rates["per_update"],
           "sampled_positions_per_s": {"per_update": rates["per_update"] * batch,
                                       "pass": with_pass * batch}}
    print(f"fresh targets for 99% of batch {batch}: per-update reanalysis "
          f"{rates['per_update']:.3g} updates/s; no reanalysis {rates['no_reanalysis']:.3g} + "
          f"pass searches at {roots_per_s:,.0f} roots/s = {with_pass:.3g} updates/s "
          f"({with_pass / rates['per_update']:.2f}x)")
    return out


def limit_programs(model, params, spec, config, batches, steps: int) -> dict:
    """{batch: jitted `(params, observation) -> [batch]`} that encode a batch of observations and
    apply the search's recurrent function (dynamics, value prefix, prediction) `steps` times in
    sequence. Every output the search reads (reward from the value prefix, value, policy logits)
    flows into the result, so XLA cannot drop the value-prefix LSTM or the policy head as dead
    code (summing the values alone let it drop both: the figure then was a network without them,
    about 2.4x faster on this CPU). With their observations: {batch: (program, observation)}."""
    from dreamer import search
    from dreamer.networks import latent_model

    fns = latent_model(model)
    recurrent_fn = search.make_recurrent_fn(fns, config.train.discount,
                                            config.train.value_prefix_horizon)
    programs = {}
    for batch in batches:
        observation = jax.random.uniform(jax.random.key(1), (batch, *spec.observation_shape))

        def unroll(params, observation, batch=batch):
            embedding = search.root(fns, params, observation).embedding
            actions = jnp.arange(batch, dtype=jnp.int32) % spec.num_actions

            def body(i, carry):
                out, embedding = recurrent_fn(params, None, (actions + i) % spec.num_actions,
                                              carry[1])
                used = out.reward + out.discount * out.value + out.prior_logits.sum(-1)
                return carry[0] + used, embedding

            return jax.lax.fori_loop(0, steps, body, (jnp.zeros((batch,)), embedding))[0]

        programs[batch] = (jax.jit(unroll), observation)
    return programs


def model_step_limit(model, params, spec, config, batches, steps: int, repeats: int):
    """The network's best throughput in model steps/s over `batches` (`limit_programs`), timed
    in this process. Returns (best rate, its batch, {batch: rate})."""
    rates = {}
    for batch, (program, observation) in limit_programs(model, params, spec, config, batches,
                                                        steps).items():
        rates[batch] = batch * steps / _timed(program, repeats, params, observation)
    best = max(rates, key=rates.get)
    return rates[best], best, rates


def _timed_pass(run, repeats: int, tstate, rstate, key, chunks, warm_up: bool = True) -> float:
    """Seconds per call of a reanalysis pass that consumes (donates) its replay, as the trainer
    jits it: the best of `repeats` calls (after a warm-up call with `warm_up`), each on a fresh
    copy of the replay made outside the timed window."""
    best = float("inf")
    for i in range(repeats + int(warm_up)):
        fresh = jax.block_until_ready(jax.tree.map(jnp.copy, rstate))
        t0 = time.perf_counter()
        jax.block_until_ready(run(tstate, fresh, key, chunks))
        if i or not warm_up:
            best = min(best, time.perf_counter() - t0)
    return best


def bench_dream(quick: bool) -> dict:
    """The buffer-wide reanalysis pass (`dreamer.reanalyse`) at the `minatar` preset on
    minatar/breakout, in model steps/s, against the limit: the same network's best recurrent
    throughput over batch sizes, same process (`limit_programs`). Limit and pass are timed in
    interleaved rounds, each keeping its best, so load from other processes hits both alike."""
    import worlds
    from dreamer import config as config_lib
    from dreamer import learner, reanalyse
    from dreamer import replay as replay_lib
    from dreamer.networks import make_model

    cfg = config_lib.minatar()
    preset_chunk = cfg.train.reanalyse_pass_chunk
    spec = worlds.make("minatar/breakout").spec
    streams, length = (2, 64) if quick else (16, 1024)
    chunks = (preset_chunk,) if quick else tuple(sorted({64, 128, 256, 1024, preset_chunk}))
    batches = (64, 256) if quick else (64, 256, 1024, 4096)
    rounds, repeats = (1, 1) if quick else (3, 1)
    model = make_model(cfg.model, spec)
    key = jax.random.key(0)
    rows = _random_rows(key, length, streams, spec)
    rstate = replay_lib.add(replay_lib.init(rows, length), rows)
    tstate = learner.init_train_state(model, cfg, key, np.asarray(rows.observation[0, 0]))
    sims = cfg.search.simulations_per_root
    limit_progs = limit_programs(model, tstate.params, spec, cfg, batches, sims)
    passes = {}
    for chunk in chunks:
        c = config_lib.override(cfg, [f"train.reanalyse_pass_chunk={chunk}"])
        n = reanalyse.pass_chunks(c, length * streams)
        # jitted as the trainer jits it: the replay donated
        passes[chunk] = (jax.jit(reanalyse.make_reanalyse_pass(model, c), donate_argnums=1), n,
                         reanalyse.pass_cost(c, n))
    limit_s = {b: float("inf") for b in batches}
    pass_s = {c: float("inf") for c in chunks}
    for round_ in range(rounds):
        for batch, (program, observation) in limit_progs.items():
            limit_s[batch] = min(limit_s[batch], _timed(program, repeats, tstate.params,
                                                        observation, min_seconds=0.2))
        for chunk, (run, n, _) in passes.items():
            pass_s[chunk] = min(pass_s[chunk], _timed_pass(
                run, repeats, tstate, rstate, key, jnp.int32(n), warm_up=round_ == 0))
    limit_rates = {b: b * sims / limit_s[b] for b in batches}
    limit_batch = max(limit_rates, key=limit_rates.get)
    limit = limit_rates[limit_batch]
    print(f"limit: {limit:,.0f} model steps/s at batch {limit_batch} "
          f"({', '.join(f'B={b}: {r:,.0f}' for b, r in limit_rates.items())})")
    rates = {}
    for chunk, (_, _n, cost) in passes.items():
        rates[chunk] = cost / pass_s[chunk]
        print(f"pass, chunk {chunk:5d}: {length * streams:,} rows in {pass_s[chunk]:.2f} s, "
              f"{rates[chunk]:,.0f} model steps/s = {rates[chunk] / limit:.2f} x limit")
    preset_rate = rates[preset_chunk]
    return {"cases": {"minatar": {
        "world": "minatar/breakout", "rows": length * streams, "simulations": sims,
        "pass_model_steps_per_s": preset_rate, "pass_chunk": preset_chunk,
        "pass_model_steps_per_s_by_chunk": rates,
        "best_pass_chunk": max(rates, key=rates.get),
        "limit_model_steps_per_s": limit, "limit_batch": limit_batch,
        "limit_by_batch": limit_rates, "efficiency": preset_rate / limit}}}


def _random_rows(key, length: int, streams: int, spec):
    from dreamer import replay as replay_lib

    obs = jax.random.uniform(key, (length, streams, *spec.observation_shape))
    if spec.observation_dtype == "uint8":
        obs = (obs * 255).astype(jnp.uint8)
    A = spec.num_actions
    return replay_lib.Rows(
        observation=obs,
        action=jax.random.randint(key, (length, streams), 0, A),
        reward=jax.random.uniform(key, (length, streams)),
        terminated=jax.random.uniform(key, (length, streams)) < 0.01,
        truncated=jnp.zeros((length, streams), bool),
        policy=jnp.full((length, streams, A), 1.0 / A),
        value=jnp.zeros((length, streams)),
        action_mask=jnp.ones((length, streams, A), bool),
    )


def bench_gpu(quick: bool, game: str = "pong") -> dict:
    """The Atari 100k check for a lent accelerator: the `atari100k` preset's train step
    (updates/s), its search at B=256 x 50 simulations (simulations/s), acting latency (one
    search per real step at the preset's N copies), and the ALE collector (env steps/s); then the
    projected wall time of one Atari 100k game. `quick` shrinks every size so it runs on a CPU
    in about a minute (the projection is then meaningless, but the code path is the same)."""
    import worlds
    from dreamer import config as config_lib
    from dreamer import learner, search
    from dreamer import replay as replay_lib
    from dreamer.networks import latent_model, make_model

    cfg = config_lib.atari100k()
    search_batch, search_sims, ale_steps = 256, cfg.search.num_simulations, 2000
    if quick:
        cfg = config_lib.override(cfg, [
            "train.batch_size=4", "train.unroll_steps=2", "train.td_steps=3",
            "search.num_simulations=4", "model.channels=8",
            "model.lstm_hidden=16", "model.projection_dim=32", "model.value_support=20",
            "model.reward_support=20", "model.head_hidden=8"])
        search_batch, search_sims, ale_steps = 4, 4, 50
    N = cfg.run.num_envs
    world = worlds.make(f"atari/{game}", num_envs=N)
    spec = world.spec
    model = make_model(cfg.model, spec)
    key = jax.random.key(0)
    out: dict = {"preset": "atari100k" + (" (quick sizes)" if quick else ""), "game": game}

    # learner: one learner phase (its updates, reanalysis included) per call, as the trainer runs
    # it; the baseline reanalyses each batch on its own (reanalyse_batches=1), same process
    # the preset's replay (capacity x N copies: its size counts in the learner's peak), 2,048
    # random rows per copy written into it
    length = 64 if quick else 2048
    rows = _random_rows(key, length, N, spec)
    rstate = replay_lib.add(replay_lib.init(rows, length if quick else cfg.replay.capacity), rows)
    tstate = learner.init_train_state(model, cfg, key, np.asarray(rows.observation[0, 0]))
    updates = config_lib.updates_per_phase(cfg)
    age = jnp.float32(0.3 * cfg.run.real_steps)
    limit = memory.device_limit()
    out["device_memory_bytes"] = limit
    variants = [("", cfg)]
    if cfg.train.reanalyse_batches != updates and not quick:
        # the whole phase's batches reanalysed in one search: faster on a large device, and
        # reanalyse_batches times the memory
        variants.append(("_grouped", config_lib.override(
            cfg, [f"train.reanalyse_batches={updates}"])))
    for suffix, c in variants:
        train_many, out[f"train_compile_s{suffix}"], peak = _learner(
            model, c, updates, tstate, rstate, key, age)
        out[f"train_peak_bytes{suffix}"] = peak
        label = (f"train step   batch {c.train.batch_size}, K {c.train.unroll_steps}, reanalyse "
                 f"{c.train.reanalyse_fraction:.0%} x {c.search.num_simulations} sims, "
                 f"{c.train.reanalyse_batches} batch(es) per search: ")
        fits = limit is None or peak <= limit
        if fits:
            out[f"updates_per_s{suffix}"] = updates / _timed_donating(
                train_many, 2, tstate, rstate, key, age)
            label += f"{out[f'updates_per_s{suffix}']:.2f} updates/s "
        print(f"{label}(compile {out[f'train_compile_s{suffix}']:.0f} s, peak "
              f"{memory.size(peak)}{_of_device()}{'' if fits else ': does not fit'})")
    if "updates_per_s_grouped" in out:
        out["grouped_vs_preset_ratio"] = out["updates_per_s_grouped"] / out["updates_per_s"]
        print(f"             {updates} batches per search vs the preset's "
              f"{cfg.train.reanalyse_batches}: {out['grouped_vs_preset_ratio']:.2f}x")

    out["pass_path"] = _gpu_pass_path(model, cfg, updates, tstate, rstate, key, age, quick)

    # search throughput at a large batch, and acting latency at the preset's N copies
    params, fns = tstate.params, latent_model(model)
    acting = ("act", N, cfg.search.num_simulations)
    for name, batch, sims in (("search", search_batch, search_sims), acting):
        s_cfg = config_lib.dataclasses.replace(cfg.search, num_simulations=sims)
        obs = rows.observation[:1, 0].repeat(batch, 0)
        mask = jnp.ones((batch, spec.num_actions), bool)
        run = search.make_search(fns, s_cfg, cfg.train.discount, cfg.train.value_prefix_horizon)
        fn = jax.jit(lambda p, k, o, m, run=run: run(p, k, o, m).action).lower(
            params, key, obs, mask).compile()
        out[f"{name}_peak_bytes"] = memory.program_bytes(fn)["peak"]
        seconds = _timed(fn, 3, params, key, obs, mask)
        out[f"{name}_batch"], out[f"{name}_s_per_call"] = batch, seconds
        out[f"{name}_sims_per_s"] = batch * sims / seconds
        print(f"{name:12s} B={batch} x {sims} sims: {batch * sims / seconds:,.0f} sims/s "
              f"({seconds * 1e3:.1f} ms per call, peak {memory.size(out[f'{name}_peak_bytes'])})")

    # the ALE collector (host vector env with the Atari 100k preprocessing)
    world.reset(0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(ale_steps // N):
        world.step(rng.integers(0, spec.num_actions, N))
    out["ale_env_steps_per_s"] = (ale_steps // N) * N / (time.perf_counter() - t0)
    world.close()
    print(f"ALE          N={N}: {out['ale_env_steps_per_s']:,.0f} env steps/s")

    # projection: the trainer alternates collection (one search + one env step per N real steps)
    # and learning (train_ratio updates per real step)
    real = config_lib.atari100k().run.real_steps
    total_updates = config_lib.atari100k().train.train_ratio * real
    acting_s = real / N * out["act_s_per_call"] + real / out["ale_env_steps_per_s"]
    learning_s = total_updates / out["updates_per_s"]
    out["projected_hours_per_game"] = (acting_s + learning_s) / 3600
    out["projected_split_s"] = {"acting": acting_s, "learning": learning_s}
    print(f"projected Atari 100k game: {out['projected_hours_per_game']:.2f} h "
          f"(acting {acting_s / 3600:.2f} h + learning {total_updates:,.0f} updates "
          f"{learning_s / 3600:.2f} h; target <= 1.5 h on one H100)")
    return out


def _gpu_pass_path(model, cfg, updates, tstate, rstate, key, age, quick: bool) -> dict:
    """The `atari100k` learner with its fresh targets from buffer-wide passes instead of from
    per-update reanalysis (`dreamer.reanalyse`, as the `minatar` preset runs): the learner phase
    without reanalysis (updates/s), the pass over the bench's replay (roots/s, per chunk size),
    and the projected learning time of one game with a pass over every stored row after each
    target-network refresh (`reanalyse_pass_interval` = `target_update_interval`), so no target
    is older than one target network. Same process as the per-update figures."""
    from dreamer import config as config_lib
    from dreamer import reanalyse

    out: dict = {}
    base = config_lib.override(cfg, ["train.reanalyse_fraction=0"])
    train_many, out["learner_compile_s"], out["learner_peak_bytes"] = _learner(
        model, base, updates, tstate, rstate, key, age)
    out["learner_updates_per_s"] = updates / _timed_donating(train_many, 2, tstate, rstate, key,
                                                            age)
    stored = min(int(rstate.num_rows), rstate.capacity) * rstate.num_streams
    out["stored_rows"] = stored
    best = 0.0
    for chunk in ((16,) if quick else (256, 1024)):
        c = config_lib.override(base, [f"train.reanalyse_pass_chunk={chunk}"])
        n = reanalyse.pass_chunks(c, stored)
        run = jax.jit(reanalyse.make_reanalyse_pass(model, c), donate_argnums=1).lower(
            tstate, rstate, key, jnp.int32(n)).compile()
        seconds = _timed_pass(run, 1 if quick else 2, tstate, rstate, key, jnp.int32(n))
        rate = n * chunk / seconds
        out[f"pass_roots_per_s_{chunk}"] = rate
        out[f"pass_peak_bytes_{chunk}"] = memory.program_bytes(run)["peak"]
        print(f"pass         chunk {chunk}: {rate:,.0f} roots/s x {c.search.num_simulations} sims "
              f"over {stored:,} stored rows (peak {memory.size(out[f'pass_peak_bytes_{chunk}'])})")
        if rate > best:
            best, out["pass_chunk"] = rate, chunk
    t, real = cfg.train, cfg.run.real_steps
    total_updates = t.train_ratio * real
    interval = t.target_update_interval
    capacity = cfg.replay.capacity * cfg.run.num_envs
    roots = sum(min(capacity, t.learning_starts + u / t.train_ratio)
                for u in np.arange(interval, total_updates + 1, interval))
    out["pass_interval"], out["projected_pass_roots"] = interval, float(roots)
    out["projected_learning_s"] = total_updates / out["learner_updates_per_s"] + roots / best
    print(f"learner      no per-update reanalysis: {out['learner_updates_per_s']:.2f} updates/s "
          f"(peak {memory.size(out['learner_peak_bytes'])}); with a pass over every stored row "
          f"each {interval} updates ({roots / 1e6:.1f}M roots at chunk {out['pass_chunk']}): "
          f"learning {out['projected_learning_s'] / 3600:.2f} h per game")
    return out


def main(what: str, quick: bool = False) -> int:
    from dreamer.jax_setup import enable_compilation_cache

    enable_compilation_cache()
    benches = {"worlds": bench_worlds, "search": bench_search, "train": bench_train,
               "dream": bench_dream, "gpu": bench_gpu}
    result = benches[what](quick)
    result = {"bench": what, "quick": quick, "device": str(jax.devices()[0]),
              "device_kind": jax.devices()[0].device_kind, **result}
    print(json.dumps(result, default=float))
    return 0
