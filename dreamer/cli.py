"""The `dreamer` command line. Heavy imports (JAX, worlds) happen inside commands only."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time

from dreamer.errors import UserError  # also dreamer.cli.UserError, as before

DEFAULT_WORLD = "cartpole"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dreamer",
        description="Sample-efficient model-based RL in JAX: learn a world model, plan with MCTS "
        "in imagined rollouts, and count every real and dreamed sample.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train an agent (default: a short run on cartpole)")
    t.add_argument("--world", default=None, help=f"world name (default {DEFAULT_WORLD})")
    t.add_argument("--real-steps", type=int, default=None, help="real env steps to collect")
    t.add_argument("--worlds", default=None, metavar="A,B,C",
                   help="continual learning: one agent learns these worlds in order, "
                        "--real-steps-each steps each, and is evaluated on every one after each "
                        "(continual.csv); sets run.worlds")
    t.add_argument("--real-steps-each", type=int, default=None, metavar="N",
                   help="with --worlds: real env steps of each world (run.real_steps_each)")
    t.add_argument("--seed", type=int, default=None, help="default 0 (on --resume: the run's)")
    t.add_argument("--out", default=None, help="run folder (default runs/<world>-s<seed>)")
    from dreamer.config import PRESETS  # imports nothing heavy

    t.add_argument("--preset", default=None,
                   help=f"{', '.join(PRESETS)} (default: the world's: text for text worlds, twx "
                        "for TextWorldExpress, minatar for MinAtar, ...)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set search.num_simulations=8")
    t.add_argument("--resume", action="store_true", help="continue the run in --out, from its own config: "
                   "--real-steps extends it; --world, --preset or --set must match it")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true",
                   help="end by printing the sample ledger as one line of JSON (config left "
                        "out) instead of the readable summary")
    t.add_argument("--distributed", action="store_true",
                   help="one process of a multi-process run (jax.distributed; reads "
                   "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)")

    e = sub.add_parser("eval", help="evaluate a run's latest checkpoint")
    e.add_argument("--run", required=True, help="run folder")
    e.add_argument("--episodes", type=int, default=None)
    e.add_argument("--temperature", type=float, default=None,
                   help="0 plays the search's best action; T > 0 samples the search policy "
                        "at T (default: the run's run.eval_temperature)")
    e.add_argument("--video", default=None, metavar="FILE",
                   help="also record the evaluation's episodes (--episodes, default 1) in FILE: "
                        ".gif or .mp4 for image worlds (score and step shown), .txt for a "
                        "transcript (any world, the one recording of text worlds)")
    e.add_argument("--world", default=None,
                   help="a continual run: evaluate on this world of its sequence only (default "
                        "every world; with --video, the first)")

    r = sub.add_parser("report", help="plots and a table from run folders")
    r.add_argument("runs", nargs="+", help="run folders (or folders of runs)")
    r.add_argument("--out", default="report", help="output folder (default ./report)")
    r.add_argument("--threshold", type=float, default=None,
                   help="report the real steps each run needed to reach this return")

    sub.add_parser("worlds", help="list registered worlds")

    from dreamer import baseline, dream, play, sweep

    play.add_arguments(sub.add_parser("play", help="play a world in the terminal (or watch an agent)"))
    sweep.add_arguments(sub.add_parser("sweep", help="a grid of runs at a fixed real budget + report"))
    d = sub.add_parser(
        "dream", help="improve a trained run with zero new real steps (learn from its replay)",
        description="Learner updates and whole-replay reanalysis passes on a run's stored "
        "experience alone: no world step, the ledger's real counts unchanged, every model step "
        "counted. The result is a run folder that eval, report, play --agent and train --resume "
        "accept.")
    dream.add_arguments(d)
    d.add_argument("--json", action="store_true",
                   help="end by printing the sample ledger as one line of JSON (config left "
                        "out) instead of the readable summary")

    baseline.add_parser(sub)
    b = sub.add_parser("bench", help="benchmarks: worlds, search, train, dream, gpu")
    b.add_argument("what", choices=["worlds", "search", "train", "dream", "gpu"],
                   help="gpu: the Atari 100k check (train step, search, ALE, projected hours)")
    b.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    return p


def _build_config(args):
    from dreamer import config as config_lib

    seed = [] if args.seed is None else [f"seed={args.seed}"]
    saved = os.path.join(args.out or "", "config.json")
    if (getattr(args, "resume", False) and args.out and os.path.isfile(saved)
            and args.world is None and getattr(args, "worlds", None) is None
            and args.preset is None):
        # `train --resume --out RUN`: the run's own config, with what the command line changes
        # (the trainer refuses a change that only a new run may make)
        with open(saved) as f:
            cfg = config_lib.config_from_dict(json.load(f))
        steps = [] if args.real_steps is None else [f"run.real_steps={args.real_steps}"]
        each = ([] if getattr(args, "real_steps_each", None) is None
                else [f"run.real_steps_each={args.real_steps_each}"])
        return config_lib.override(cfg, [*seed, *each, *args.overrides, *steps])
    seed = seed or ["seed=0"]
    world = args.world or DEFAULT_WORLD
    continual = []
    if getattr(args, "worlds", None) is not None:  # a continual run: its world is the first
        if args.world is not None:
            raise UserError("--world and --worlds: give one (--worlds A,B,C trains on A first)")
        if args.real_steps is not None:
            raise UserError("--real-steps with --worlds: give each world's budget with "
                            "--real-steps-each N (the run's total is N x the number of worlds)")
        world = args.worlds.split(",")[0].strip()
        continual = [f"run.worlds={args.worlds}"]
    if getattr(args, "real_steps_each", None) is not None:
        continual.append(f"run.real_steps_each={args.real_steps_each}")
    preset_name = args.preset or config_lib.default_preset(world)
    cfg = config_lib.preset(preset_name)
    cfg = config_lib.override(cfg, [f"world={world}", *seed, *continual,
                                    *args.overrides])
    if args.real_steps is not None:
        cfg = config_lib.override(cfg, [f"run.real_steps={args.real_steps}"])
    return cfg


def _check_out_dir(path: str) -> None:
    """Refuses an --out the run could not write, creating nothing: a folder that does not exist
    yet is made by the run itself once its world and config are known good."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"--out {path}: not writable ({existing} is a file, not a folder); "
                        "choose another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--out {path}: not writable (permission denied on {existing}); choose "
                        "another folder")


@contextlib.contextmanager
def _stop_on_signals():
    """Yields `{"flag": False}`, set to True by Ctrl-C or SIGTERM while inside, so a long command
    stops at its next safe point (after a checkpoint); the previous handlers come back on exit,
    so a caller in the same process (a notebook, a test) gets Ctrl-C back."""
    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_train(args) -> int:
    cfg = _build_config(args)
    if cfg.seed < 0:  # gymnasium and ALE refuse negative seeds deep inside a run
        raise UserError(f"--seed {cfg.seed}: the seed must be >= 0")
    name = "+".join(cfg.run.world_sequence) if cfg.run.worlds else cfg.world
    out = args.out or os.path.join("runs", f"{name.replace('/', '-').replace(':', '-')}-s{cfg.seed}")
    if args.resume and args.out is None:
        raise UserError("--resume needs --out RUN_DIR, the folder of the run to continue")
    if args.resume and not os.path.isdir(os.path.join(out, "checkpoints")):
        raise UserError(f"--resume: {out} is not a dreamer run folder (no checkpoints/ in it)")
    if args.resume and not any(d.isdigit() for d in os.listdir(os.path.join(out, "checkpoints"))):
        raise UserError(f"--resume: {out}/checkpoints holds no finished checkpoint (the run "
                        "stopped before its first one); start it again without --resume")
    _check_out_dir(out)
    from dreamer.jax_setup import enable_compilation_cache, limit_malloc_arenas

    limit_malloc_arenas()  # before JAX starts its threads: flat resident memory on long runs

    enable_compilation_cache()
    if args.distributed:
        from dreamer.parallel import initialize_distributed

        initialize_distributed()

    with _stop_on_signals() as stop:
        return _train(cfg, out, args, stop)


def _train(cfg, out: str, args, stop: dict) -> int:
    from dreamer.train import Trainer

    where = ""
    if args.distributed:
        import jax

        where = (f", process {jax.process_index()} of {jax.process_count()}, "
                 f"{jax.local_device_count()} of {jax.device_count()} devices here")
    what = (f"{', then '.join(cfg.run.world_sequence)} (seed {cfg.seed}, "
            f"{cfg.run.real_steps_each} real steps each" if cfg.run.worlds
            else f"{cfg.world} (seed {cfg.seed}, {cfg.run.real_steps} real steps")
    trainer = Trainer(cfg, out, resume=args.resume,  # announced once the input is known good
                      announce=lambda: print(f"dreamer: training {what}{where}) -> {out}",
                                             flush=True))
    ledger = trainer.run(progress=not args.no_progress, stop_flag=lambda: stop["flag"])
    if args.json:
        _print_ledger_json(ledger)
    else:
        how = (f"stopped (checkpoint written; continue with `dreamer train --resume --out {out}`)"
               if stop["flag"] else "done")
        print(summary_text(ledger, out, how))
    return 130 if stop["flag"] else 0


def _print_ledger_json(ledger) -> None:
    """The ledger as one JSON line, its config left out (`--json`)."""
    data = ledger.to_json()
    data.pop("config")
    print(json.dumps(data))


def _count(n: int) -> str:
    return f"{n:,}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def summary_text(ledger, out: str, how: str = "done") -> str:
    """The few lines `dreamer train` and `dreamer dream` end with (`--json` prints the ledger
    instead): real and dreamed steps, the dream ratio, the newest evaluation, the wall time and
    the run folder."""
    ratio = ledger.dream_ratio
    lines = [f"dreamer: {ledger.world} (seed {ledger.seed}) {how}",
             f"  real steps     {_count(ledger.env_steps)} ({_count(ledger.episodes)} episodes)"]
    for name, counts in ledger.by_world.items():  # a continual run's worlds
        lines.append(f"    {name}: {_count(counts['env_steps'])}")
    dreamed = f"{_count(ledger.updates)} learner updates"
    if ledger.dream_updates:
        dreamed += f", {_count(ledger.dream_updates)} of them dreamed with no real step"
    lines += [f"  dreamed steps  {_count(ledger.simulated)} model steps ({dreamed})",
              f"  dream ratio    {ratio:,.0f} model steps per real step" if ratio >= 100 else
              f"  dream ratio    {ratio:.1f} model steps per real step"]
    if ledger.eval_mean_return is None:
        lines.append("  eval return    none yet")
    else:
        lines.append(f"  eval return    {ledger.eval_mean_return:.2f} +/- "
                     f"{ledger.eval_std_return or 0.0:.2f} over {ledger.eval_episodes} episodes")
    lines += [f"  wall time      {_duration(ledger.wall_seconds)}",
              f"  run folder     {out} (ledger.json, eval.csv; `dreamer eval --run {out}`)"]
    return "\n".join(lines)


def cmd_eval(args) -> int:
    """Evaluates a run's newest checkpoint, read-only: writes RUN/eval.json and nothing else
    (and, with --video FILE, that file)."""
    import worlds
    from dreamer import agent as agent_lib

    if args.episodes is not None and args.episodes < 1:
        raise UserError(f"--episodes {args.episodes}: must be > 0")
    if args.temperature is not None and not args.temperature >= 0:
        raise UserError(f"--temperature {args.temperature}: must be >= 0 (0 = greedy)")
    if args.video is not None:
        from dreamer import video

        video.check_path(args.video)
    try:
        config = agent_lib.read_config(args.run)
    except agent_lib.NotARunError:
        raise UserError(
            f"--run {args.run}: not a dreamer run folder (no config.json / checkpoints)") from None
    t0 = time.perf_counter()
    temperature = config.run.eval_temperature if args.temperature is None else args.temperature
    if config.run.worlds:
        return _eval_continual(args, config, temperature, t0)
    if args.world is not None and args.world != config.world:
        raise UserError(f"--world {args.world}: {args.run} was trained on {config.world} alone; "
                        "drop --world (it picks a world of a continual run's sequence)")
    if args.video is None:
        agent, returns = agent_lib.evaluate(args.run, args.episodes, temperature)
    else:
        agent, returns = _eval_and_record(args, config, temperature)
    result = {
        "run": args.run,
        "env_steps": agent.ledger.env_steps,
        "updates": agent.ledger.updates,
        "dream_updates": agent.ledger.dream_updates,
        "episodes": int(returns.size),
        "temperature": temperature,
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "returns": [float(r) for r in returns],
        "seconds": time.perf_counter() - t0,
        # the protocol: every option of the evaluation copies, defaults included (Atari's no-op
        # starts, sticky actions, episode cap, no life loss or reward clipping)
        "world": config.world,
        "world_settings": worlds.settings(config.world, evaluation=True, **config.world_kwargs()),
    }
    with open(os.path.join(args.run, "eval.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k not in ("returns", "world_settings")}))
    return 0


def _eval_and_record(args, config, temperature: float):
    """`dreamer eval --video FILE`: (agent, returns) of the evaluation of --episodes episodes
    (default 1), whose episodes are recorded in FILE as well (`dreamer.video`)."""
    from dreamer import agent as agent_lib
    from dreamer import video

    episodes = 1 if args.episodes is None else args.episodes
    world = agent_lib.make_world(config)
    try:
        video.check_world(args.video, world.spec)  # before anything compiles
        agent = agent_lib.load(args.run, world, config)
    finally:
        world.close()  # evaluation and recording build their own copies (a JAX world's is a no-op)
    returns = agent.evaluate(episodes, temperature)
    _record(args, agent, episodes, temperature)
    return agent, returns


def _record(args, agent, episodes: int, temperature: float) -> None:
    """Records `agent`'s first `episodes` evaluation episodes in --video FILE and says so."""
    from dreamer import video

    recorded = video.record(agent, args.video, episodes, temperature)
    scores = ", ".join(f"{e.score:g}" for e in recorded)
    width, height = video.frame_size(agent.spec) if agent.spec.observation_kind == "image" else (
        0, 0)
    what = (f"{video.frame_count(recorded)} frames of {width}x{height}"
            if args.video.lower().endswith(video.MOVIE_FORMATS) else "a transcript")
    print(f"dreamer: recorded {len(recorded)} episode(s) of {agent.spec.name}, score {scores}: "
          f"{what} -> {args.video}", flush=True)


def _eval_continual(args, config, temperature: float, t0: float) -> int:
    """`dreamer eval` of a continual run: its newest checkpoint on every world of its sequence,
    or on `--world` alone (with `--video`, by default the first), seen through the run's padded
    interface, with the key of the run's own evaluations; writes RUN/eval.json with one entry per
    world evaluated (`mean_return` is their average) and records `--video` as a single-world
    run's eval does."""
    from dreamer import agent as agent_lib
    from dreamer.train import evaluate_policy, evaluation_key, make_continual_worlds

    sequence = config.run.world_sequence
    if args.world is not None and args.world not in sequence:
        raise UserError(f"--world {args.world}: not a world of {args.run}'s sequence "
                        f"{config.run.worlds}; name one of them")
    chosen = args.world or (sequence[0] if args.video is not None else None)
    default_episodes = 1 if args.video is not None else config.run.eval_episodes
    episodes = default_episodes if args.episodes is None else args.episodes
    if args.video is not None:
        from dreamer import video
    per_world, agent = {}, None
    for name, world in zip(sequence, make_continual_worlds(config), strict=True):
        if chosen is not None and name != chosen:
            continue
        if args.video is not None:
            video.check_world(args.video, world.spec)  # before anything compiles
        agent = agent_lib.load(args.run, world, config)
        returns = evaluate_policy(config, agent.programs, agent.mesh, agent.params,
                                  evaluation_key(config.seed, agent.ledger.env_steps), episodes,
                                  temperature)
        per_world[world.spec.name] = {"episodes": int(returns.size),
                                      "mean_return": float(returns.mean()),
                                      "std_return": float(returns.std()),
                                      "returns": [float(r) for r in returns]}
        if args.video is not None:
            _record(args, agent, episodes, temperature)
        if chosen is not None:
            break  # the first occurrence of a world the sequence repeats
    result = {
        "run": args.run,
        "env_steps": agent.ledger.env_steps,
        "updates": agent.ledger.updates,
        "dream_updates": agent.ledger.dream_updates,
        "temperature": temperature,
        "mean_return": float(sum(w["mean_return"] for w in per_world.values()) / len(per_world)),
        "worlds": per_world,
        "seconds": time.perf_counter() - t0,
    }
    with open(os.path.join(args.run, "eval.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({**result, "worlds": {name: {k: v for k, v in w.items() if k != "returns"}
                                           for name, w in per_world.items()}}))
    return 0


def cmd_dream(args) -> int:
    """Dreams on a run (`dreamer.dream`); Ctrl-C or SIGTERM checkpoints after the current phase
    and stops (exit 130)."""
    from dreamer import dream

    if args.out is not None:
        _check_out_dir(args.out)
    from dreamer.jax_setup import enable_compilation_cache, limit_malloc_arenas

    limit_malloc_arenas()
    enable_compilation_cache()
    with _stop_on_signals() as stop:
        ledger, plan, done = dream.dream(
            args.run, updates=args.updates, passes=args.passes, out_dir=args.out,
            eval_every=args.eval_every, progress=not args.no_progress,
            stop_flag=lambda: stop["flag"])
    out = args.out or args.run
    if done < plan.phases:
        left = (plan.phases - done) * plan.updates_per_phase
        print(f"dreamer dream: stopped after {done * plan.updates_per_phase} of {plan.updates} "
              f"updates, checkpoint written; dream the rest with `dreamer dream --run {out} "
              f"--updates {left}`", flush=True)
    if args.json:
        _print_ledger_json(ledger)
    else:
        print(summary_text(ledger, out, "dreamed" if done == plan.phases else "stopped"))
    return 130 if done < plan.phases else 0


def cmd_report(args) -> int:
    from dreamer.report import build_report

    print(build_report(args.runs, args.out, args.threshold), end="")
    print(f"dreamer: report written to {args.out}/report.md")
    return 0


def cmd_worlds(args) -> int:
    import worlds

    for name in worlds.names():
        print(name)
    print("gym:<ID>  (any installed gymnasium env with a Discrete action space)")
    return 0


def cmd_play(args) -> int:
    from dreamer import play

    return play.run(args)


def cmd_sweep(args) -> int:
    from dreamer import sweep

    return sweep.run(args)


def cmd_baseline(args) -> int:
    from dreamer import baseline

    return baseline.run(args)


def cmd_bench(args) -> int:
    from dreamer import bench

    return bench.main(args.what, quick=args.quick)


def _known_errors():
    """The errors printed as one line: a user can fix them, and their message says how."""
    from worlds.errors import WorldError

    return (UserError, WorldError)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "train"
    if args.command is None:
        args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "train"])
    handler = {"train": cmd_train, "eval": cmd_eval, "report": cmd_report, "worlds": cmd_worlds,
               "bench": cmd_bench, "play": cmd_play, "sweep": cmd_sweep, "dream": cmd_dream,
               "baseline": cmd_baseline}
    try:
        return handler[command](args)
    except Exception as e:
        from dreamer import memory

        if memory.is_out_of_memory(e) and not args.debug:
            text = memory.out_of_memory_message(e)  # XLA's error is pages long
        elif args.debug or not isinstance(e, _known_errors()):
            raise
        else:
            text = str(e)
        message = " ".join(text.split())  # one line, whatever the error's own text holds
        print(f"dreamer: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
