"""`dreamer sweep`: a grid of runs at a fixed real budget, plus a planning-free ablation and a report.

    dreamer sweep --world cartpole --real-steps 3000 --vary search.num_simulations=2,4,8 --seeds 3

runs every cell of the grid (the product of the `--vary` lists) once per seed as a separate
`dreamer train` process, and the same config with `search.algorithm=none` (act from the policy head,
no search) as the planning-free ablation. Each run lands in `OUT/<key=value,...>-s<seed>/`; a run
whose `ledger.json` says it finished at this budget is reused, and one that was interrupted is
resumed, so a sweep can be run again to complete it. The report (`OUT/report/`) plots the final
evaluation return at the fixed real budget against the dream ratio (simulated model steps per real
step, from each run's ledger), seeds aggregated as the mean with a bootstrap 95% interval.

On a cluster, `--slurm FILE` writes a Slurm job-array script instead and runs nothing:

    dreamer sweep --world atari100k --real-steps 100000 --seeds 3 --no-ablation \
        --out /shared/atari100k --slurm atari100k.sbatch --slurm-option=--gres=gpu:1 \
        --slurm-time 4:00:00 --slurm-setup 'source ~/dreamer/.venv/bin/activate'
    sbatch atari100k.sbatch
    dreamer report /shared/atari100k --out /shared/atari100k/report

One array task per run (world x seed x cell); each task runs the plain `dreamer train` command of
its run into the same folder the local sweep would use, so `dreamer report` reads the folder (and
adds the human-normalised Atari 100k aggregates for `atari/<game>` runs). `--world` takes several
worlds separated by commas, or `atari100k` for the 26 games of the Atari 100k benchmark; with
several worlds a run's folder is `OUT/<world>-<cell>-s<seed>/` and the sweep runs only as a Slurm
array (or `--dry-run`).

Imports nothing heavy at module level (the CLI imports this module to build its parser).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time

from dreamer.config import ConfigError, config_from_dict, flatten_config

ABLATION = ("search.algorithm", "none")
"""The config assignment of the planning-free ablation."""

ATARI_100K = "atari100k"
"""`--world` shorthand for the 26 games of the Atari 100k benchmark (`atari/<game>` each)."""


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One `dreamer train` run of the sweep.

    Attributes:
      cell: the grid cell's assignments, e.g. (("search.num_simulations", "8"),); the ablation's
        cell is ((ABLATION),).
      seed: the run's seed.
      folder: the run folder.
      config: the run's full config as `Config.to_dict()` (validated).
      ablation: whether this is the planning-free ablation.
    """

    cell: tuple[tuple[str, str], ...]
    seed: int
    folder: str
    config: dict
    ablation: bool = False

    @property
    def cell_name(self) -> str:
        """`key=value[,key=value]`, the folder name without the seed."""
        return cell_name(self.cell)


def cell_name(cell: tuple[tuple[str, str], ...]) -> str:
    """The folder-name form of a grid cell: `key=value` joined by commas ('/' becomes '-');
    "agent" for the empty cell of a sweep with no --vary (the agent against its ablation)."""
    if not cell:
        return "agent"
    return ",".join(f"{k}={v}".replace("/", "-").replace(os.sep, "-") for k, v in cell)


def add_arguments(parser) -> None:
    """Adds the `dreamer sweep` options to an argparse (sub)parser."""
    parser.add_argument("--world", default="cartpole",
                        help="world name (default cartpole); several separated by commas, or "
                        f"{ATARI_100K!r} for the 26 Atari 100k games (several worlds: --slurm or "
                        "--dry-run only)")
    parser.add_argument("--real-steps", type=int, required=True,
                        help="the fixed real budget of every run (real env steps)")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a config field and its values, e.g. search.num_simulations=2,4,8; "
                        "repeat for a grid over several fields")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell: 0..K-1 (default 3)")
    parser.add_argument("--preset", default=None,
                        help="config preset (default: the world's, e.g. small for cartpole)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a config override shared by every run")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs in parallel (default 1); each gets its own share of the "
                        "CPUs this sweep may use (cpu_groups)")
    parser.add_argument("--out", default=None, help="sweep folder (default runs/sweep-<world>)")
    parser.add_argument("--no-ablation", action="store_true",
                        help="skip the planning-free ablation (search.algorithm=none)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="also report the real steps each run needed to reach this return")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the inputs and list the runs, run nothing")
    slurm = parser.add_argument_group(
        "Slurm", "write a job-array script (one task per run, each the plain `dreamer train` "
        "command of its run, resuming from its checkpoint when requeued) and run nothing")
    slurm.add_argument("--slurm", default=None, metavar="FILE",
                       help="write the sbatch script to FILE ('-': print it); --out is the shared "
                       "results folder, written as an absolute path")
    slurm.add_argument("--slurm-option", action="append", default=[], metavar="OPTION",
                       help="an #SBATCH line, e.g. --slurm-option=--gres=gpu:1 (or gres=gpu:1); "
                       "repeat for several")
    slurm.add_argument("--slurm-time", default=None, metavar="TIME",
                       help="time limit per task, e.g. 4:00:00 (#SBATCH --time)")
    slurm.add_argument("--slurm-partition", default=None, metavar="NAME",
                       help="partition (#SBATCH --partition)")
    slurm.add_argument("--slurm-max-running", type=int, default=None, metavar="N",
                       help="at most N tasks at once (--array=0-(n-1)%%N)")
    slurm.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                       help="a shell line each task runs first, verbatim, e.g. 'source "
                       "venv/bin/activate' or 'export DREAMER_CACHE=/shared/cache'; repeatable")


def parse_vary(items: list[str]) -> list[tuple[str, list[str]]]:
    """Parses `--vary key=v1,v2,...` options into (key, values) pairs.

    Raises:
      UserError: for a malformed option, an empty or repeated value, a repeated key, or a key the
        sweep itself sets (world, seed, run.real_steps).
    """
    from dreamer.errors import UserError

    parsed: list[tuple[str, list[str]]] = []
    for item in items:
        if "=" not in item:
            raise UserError(f"--vary {item!r}: expected key=v1,v2,..., e.g. "
                            "search.num_simulations=2,4,8")
        key, text = (part.strip() for part in item.split("=", 1))
        values = [v.strip() for v in text.split(",")]
        if not key or not text or any(not v for v in values):
            raise UserError(f"--vary {item!r}: expected key=v1,v2,... with no empty value")
        if key in ("world", "seed"):
            raise UserError(f"--vary {key}: the sweep sets it (use --world, --seeds)")
        if key == "run.real_steps":
            raise UserError("--vary run.real_steps: a sweep holds the real budget fixed "
                            "(use --real-steps)")
        if len(set(values)) != len(values):
            raise UserError(f"--vary {item!r}: a value is repeated")
        if any(key == k for k, _ in parsed):
            raise UserError(f"--vary {key}: given twice; list all its values in one --vary")
        parsed.append((key, values))
    return parsed


def world_names(text: str) -> list[str]:
    """The worlds of a `--world` value: one name, several separated by commas, or `atari100k`
    (the 26 Atari 100k games as `atari/<game>`).

    Raises:
      UserError: an empty name or a world given twice.
    """
    from dreamer.errors import UserError

    names: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            raise UserError(f"--world {text!r}: an empty world name (separate worlds by commas)")
        if name == ATARI_100K:
            from worlds.atari import ATARI_100K_GAMES

            names += [f"atari/{game}" for game in ATARI_100K_GAMES]
        else:
            names.append(name)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"--world {text!r}: {', '.join(repeated)} given twice")
    return names


def _slug(text: str) -> str:
    """A world name as a folder-name part: '/' and ':' become '-'."""
    return text.replace("/", "-").replace(":", "-")


def default_out(args) -> str:
    """The sweep folder when --out is not given: runs/sweep-<world>."""
    return os.path.join("runs", "sweep-" + _slug(args.world))


def plan(args) -> list[SweepRun]:
    """Builds and validates every run's config before any run starts.

    Returns:
      The runs: for each seed, each world, the grid cells then the ablation (unless
      --no-ablation). One world: `OUT/<cell>-s<seed>/`; several: `OUT/<world>-<cell>-s<seed>/`.

    Raises:
      ConfigError / UserError: a bad key or value, named; UnknownWorldError for the world.
    """
    from dreamer import config as config_lib
    from dreamer.errors import UserError

    if args.real_steps is None or args.real_steps <= 0:
        raise UserError(f"--real-steps must be > 0, got {args.real_steps}")
    if args.seeds <= 0:
        raise UserError(f"--seeds must be > 0, got {args.seeds}")
    if args.jobs <= 0:
        raise UserError(f"--jobs must be > 0, got {args.jobs}")
    vary = parse_vary(args.vary)
    names = world_names(args.world)
    # A Slurm array of one config (e.g. a benchmark: games x seeds) is a sweep of its own; a local
    # sweep of one world compares cells (or the agent with its ablation).
    if not vary and args.no_ablation and getattr(args, "slurm", None) is None:
        raise UserError("nothing to sweep: give --vary KEY=V1,V2,... (or drop --no-ablation)")
    if args.out is None:
        args.out = default_out(args)
    out = args.out
    cells = [tuple(zip([k for k, _ in vary], values, strict=True))
             for values in itertools.product(*[vs for _, vs in vary])]
    grid = [(c, False) for c in cells] + ([] if args.no_ablation else [((ABLATION,), True)])
    bases = {}
    for world in names:
        # With no --vary the grid is one cell (the preset's config): the agent against its
        # ablation. Each world gets its own default preset (atari100k for atari/<game>, ...).
        base = config_lib.preset(args.preset or config_lib.default_preset(world))
        shared = [f"world={world}", *args.overrides, f"run.real_steps={args.real_steps}"]
        config_lib.override(base, shared)  # a bad --set is named as such, before any cell
        bases[world] = base
    runs: list[SweepRun] = []
    # Seed-major order: a sweep stopped part-way has every world and cell at the seeds it reached.
    for seed, world, (cell, ablation) in itertools.product(range(args.seeds), names, grid):
        assignments = [f"world={world}", f"seed={seed}", *args.overrides,
                       *(f"{k}={v}" for k, v in cell), f"run.real_steps={args.real_steps}"]
        try:
            cfg = config_lib.override(bases[world], assignments)
        except config_lib.ConfigError as e:
            message = str(e)
            if message.startswith("--set "):
                message = "--vary " + message[len("--set "):]
            raise config_lib.ConfigError(f"{message} (in the cell {cell_name(cell)})") from None
        name = f"{cell_name(cell)}-s{seed}"
        folder = os.path.join(out, name if len(names) == 1 else f"{_slug(world)}-{name}")
        runs.append(SweepRun(cell=cell, seed=seed, folder=folder, config=cfg.to_dict(),
                             ablation=ablation))
    for world, options in sorted({(r.config["world"], tuple(r.config["world_options"].items()))
                                  for r in runs}):  # sorted pairs
        _check_world(world, dict(options))
    return runs


def _check_world(name: str, options: dict) -> None:
    """Builds the world once with each set of the runs' world options, so an unknown or
    unsupported world, or an option it does not take, fails before any run."""
    import worlds

    worlds.make(name, **options).close()


def run_state(run: SweepRun) -> str:
    """What is in the run's folder: "done" (finished at this budget with this config), "resume"
    (a checkpoint of this config short of the budget), or "new".

    Raises:
      UserError: the folder holds a run of another config (the sweep would mix them).
    """
    from dreamer.errors import UserError

    ledger_path = os.path.join(run.folder, "ledger.json")
    if not os.path.isfile(ledger_path):
        return "resume" if _has_checkpoint(run.folder) else "new"
    try:
        with open(ledger_path) as f:
            ledger = json.load(f)
    except (OSError, ValueError):
        return "resume" if _has_checkpoint(run.folder) else "new"
    try:
        # A field the saved run does not know (added to the code since) takes its default.
        saved = flatten_config(config_from_dict(ledger.get("config", {})).to_dict())
    except ConfigError as e:
        raise UserError(f"{run.folder} holds a run whose config this version cannot read ({e}); "
                        "remove it or choose another --out") from None
    wanted = flatten_config(run.config)
    budget = wanted.pop("run.real_steps")
    saved_budget = saved.pop("run.real_steps")
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        raise UserError(f"{run.folder} holds a run of another config ({', '.join(differ[:4])} "
                        "differ); remove it or choose another --out")
    env_steps = ledger.get("real", {}).get("env_steps", 0)
    if saved_budget > budget:
        raise UserError(f"{run.folder} holds a run of {saved_budget} real steps, longer than "
                        f"--real-steps {budget}; remove it or choose another --out")
    if env_steps >= budget and _has_final_eval(run, env_steps):
        return "done"
    # Short of the budget, or stopped between its last step and its final evaluation: a resume
    # continues from the checkpoint (and a longer --real-steps extends a finished run).
    return "resume" if os.path.isdir(os.path.join(run.folder, "checkpoints")) else "new"


def _has_final_eval(run: SweepRun, env_steps: int) -> bool:
    if run.config["run"]["eval_episodes"] == 0:
        return True
    try:
        with open(os.path.join(run.folder, "eval.csv")) as f:
            rows = f.read().split()
    except OSError:
        return False
    return len(rows) > 1 and rows[-1].split(",")[0] == str(env_steps)


def train_arguments(run: SweepRun, args) -> list[str]:
    """The arguments of one run's `dreamer train` command, after `train` (without --resume)."""
    command = ["--world", run.config["world"], "--seed", str(run.seed),
               "--real-steps", str(args.real_steps), "--out", run.folder, "--no-progress"]
    if args.preset:
        command += ["--preset", args.preset]
    for assignment in [*args.overrides, *(f"{k}={v}" for k, v in run.cell)]:
        command += ["--set", assignment]
    return command


def train_command(run: SweepRun, args, resume: bool) -> list[str]:
    """The `dreamer train` command line of one run."""
    command = [sys.executable, "-m", "dreamer.cli", "train", *train_arguments(run, args)]
    if resume:
        command.append("--resume")
    return command


def _say(message: str) -> None:
    print(message, flush=True)


def cpu_groups(cpus, jobs: int) -> list[list[int]] | None:
    """`jobs` disjoint, near-equal groups of `cpus` (the CPUs this process may use), one per
    concurrent run, or None where there is nothing to split (one job, or fewer CPUs than jobs).

    Why: on one core each, two minatar/breakout runs at once each kept 0.95x of the speed of a
    run alone (1.89x the throughput of one run), where the same two runs unpinned competed for
    both cores at 0.85x each (XLA's intra-op threads of one process get in the other's way),
    and one run alone on both cores was 1.14x a run on one core. Measured on a 2-core CPU,
    notebooks/results/both_cores/.
    """
    cpus = sorted(cpus)
    if jobs <= 1 or len(cpus) < jobs:
        return None
    size, extra = divmod(len(cpus), jobs)
    groups, start = [], 0
    for i in range(jobs):
        end = start + size + (i < extra)
        groups.append(cpus[start:end])
        start = end
    return groups


@contextlib.contextmanager
def _cpus_of_children(group, allowed):
    """Within: processes this thread starts run on `group` only (a child inherits the CPU mask
    of the thread that forks it); the thread's own mask is `allowed` again afterwards."""
    if group is None:
        yield
        return
    os.sched_setaffinity(0, group)
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def _allowed_cpus() -> set[int] | None:
    """The CPUs this process may run on, where the OS tells (Linux); None elsewhere."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    return None if getaffinity is None else getaffinity(0)


def execute(runs: list[SweepRun], args, log=_say) -> list[SweepRun]:
    """Runs the runs not yet done, `args.jobs` at a time; returns the runs that failed.

    Each run's output goes to `<run folder>/train.log`.
    """
    states = {run.folder: run_state(run) for run in runs}
    todo = [run for run in runs if states[run.folder] != "done"]
    reused = len(runs) - len(todo)
    allowed = _allowed_cpus()
    groups = None if allowed is None else cpu_groups(allowed, args.jobs)
    pinned = "" if groups is None else (
        ", each on its own CPUs (" + " | ".join(",".join(map(str, g)) for g in groups) + ")")
    log(f"dreamer sweep: {len(runs)} runs, {reused} already done, {args.jobs} at a time"
        f"{pinned} -> {args.out}")
    free = list(groups or [])
    failed: list[SweepRun] = []
    active: list[tuple[SweepRun, subprocess.Popen, float, object, list[int] | None]] = []
    queue = list(todo)
    finished = reused
    interrupted = False
    env = dict(os.environ)
    try:
        while queue or active:
            while queue and len(active) < args.jobs:
                run = queue.pop(0)
                os.makedirs(run.folder, exist_ok=True)
                resume = states[run.folder] == "resume"
                if not resume:
                    _clear_partial(run.folder)
                handle = open(os.path.join(run.folder, "train.log"), "a")
                group = free.pop(0) if free else None
                with _cpus_of_children(group, allowed):
                    process = subprocess.Popen(train_command(run, args, resume), stdout=handle,
                                               stderr=subprocess.STDOUT, env=env)
                active.append((run, process, time.perf_counter(), handle, group))
                log(f"  start  {os.path.basename(run.folder)}{' (resume)' if resume else ''}")
            time.sleep(0.2)
            for item in list(active):
                run, process, started, handle, group = item
                code = process.poll()
                if code is None:
                    continue
                active.remove(item)
                handle.close()
                if group is not None:
                    free.append(group)
                finished += 1
                seconds = time.perf_counter() - started
                name = os.path.basename(run.folder)
                if code == 0:
                    log(f"  [{finished}/{len(runs)}] done   {name} ({seconds:.0f} s)")
                elif code == 130:
                    # The run was interrupted (SIGINT/SIGTERM reached it but perhaps not this
                    # process, e.g. a background sweep): it checkpointed; start nothing new.
                    log(f"  [{finished}/{len(runs)}] stopped {name} (checkpoint written)")
                    queue.clear()
                    interrupted = True
                else:
                    failed.append(run)
                    log(f"  [{finished}/{len(runs)}] FAILED {name} (exit {code}; see "
                        f"{os.path.join(run.folder, 'train.log')})")
    except KeyboardInterrupt:
        # The children got the same SIGINT (one process group): they checkpoint and exit.
        log("dreamer sweep: interrupted; waiting for the running runs to checkpoint")
        for _run, process, _started, handle, _group in active:
            process.wait()
            handle.close()
        raise
    if interrupted:
        raise KeyboardInterrupt
    return failed


def _has_checkpoint(folder: str) -> bool:
    """Whether the run folder holds a finished checkpoint (orbax renames a step's temporary
    folder to the bare step number once it is complete)."""
    path = os.path.join(folder, "checkpoints")
    return os.path.isdir(path) and any(name.isdigit() for name in os.listdir(path))


# The files a run writes as it goes (besides tb/ and checkpoints/): a run killed before its first
# checkpoint leaves them behind, and both the local sweep and the Slurm task clear them.
PARTIAL_ROWS = ("eval.csv", "metrics.jsonl", "ledger.json")


def _clear_partial(folder: str) -> None:
    """Removes what a run killed before its first checkpoint left (its rows, and a checkpoint
    folder holding no finished step), so a fresh start does not append to it (its metrics and
    evaluation rows would be repeated) and is not taken for a resume."""
    import shutil

    for name in PARTIAL_ROWS:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.remove(path)
    shutil.rmtree(os.path.join(folder, "tb"), ignore_errors=True)
    if not _has_checkpoint(folder):
        shutil.rmtree(os.path.join(folder, "checkpoints"), ignore_errors=True)


def final_returns(folder: str) -> tuple[int, int, float] | None:
    """(env_steps, simulated, mean_return) of the run's last evaluation, or None."""
    from dreamer.report import ReportError, load_run

    try:
        curve = load_run(folder)["curve"]
    except ReportError:
        return None
    return int(curve[-1, 0]), int(curve[-1, 1]), float(curve[-1, 2])


def summarise(runs: list[SweepRun]) -> list[dict]:
    """Aggregates seeds per cell: mean dream ratio and its split, final returns with a bootstrap
    95% interval (and the IQM at >= 5 seeds).

    Returns:
      One dict per cell (grid cells in order, then the ablation) with keys name, ablation, seeds,
      returns (per seed), mean, low, high, iqm (or None), dream_ratio, search, reanalyse, unroll
      (simulated steps per real step), real_steps, wall_seconds (mean per run).
    """
    import numpy as np

    from dreamer.report import bootstrap_interval, interquartile_mean

    cells: dict[str, list[SweepRun]] = {}
    for run in runs:
        cells.setdefault(run.cell_name, []).append(run)
    rows = []
    for name, members in cells.items():
        returns, ledgers = [], []
        for run in members:
            final = final_returns(run.folder)
            # Only runs that reached the budget count: a failed run's last evaluation is earlier.
            if final is None or run_state(run) != "done":
                continue
            with open(os.path.join(run.folder, "ledger.json")) as f:
                ledgers.append(json.load(f))
            returns.append(final[2])
        if not returns:
            continue
        values = np.array(returns)
        low, high = bootstrap_interval(values)
        env_steps = np.array([ledger["real"]["env_steps"] for ledger in ledgers], np.float64)

        def per_step(part, ledgers=ledgers, env_steps=env_steps):
            counts = np.array([ledger["simulated"][part] for ledger in ledgers], np.float64)
            return float(np.mean(counts / env_steps))

        rows.append({
            "name": name,
            "cell": members[0].cell,
            "ablation": members[0].ablation,
            "seeds": len(returns),
            "returns": returns,
            "mean": float(values.mean()),
            "low": low,
            "high": high,
            "iqm": interquartile_mean(values) if len(values) >= 5 else None,
            "dream_ratio": float(np.mean([ledger["dream_ratio"] for ledger in ledgers])),
            "search": per_step("search"),
            "reanalyse": per_step("reanalyse"),
            "unroll": per_step("unroll"),
            "real_steps": int(env_steps.mean()),
            "wall_seconds": float(np.mean([ledger["wall_seconds"] for ledger in ledgers])),
        })
    return rows


def plot_dream_ratio(rows: list[dict], world: str, real_steps: int, path: str) -> None:
    """The headline plot: final return at the fixed real budget vs the dream ratio (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    grid = sorted((r for r in rows if not r["ablation"]), key=lambda r: r["dream_ratio"])
    ablation = [r for r in rows if r["ablation"]]
    for group, members in _lines(grid).items():
        x = np.array([r["dream_ratio"] for r in members])
        y = np.array([r["mean"] for r in members])
        err = np.array([[r["mean"] - r["low"] for r in members], [r["high"] - r["mean"] for r in members]])
        varied = grid[0]["cell"][0][0] if grid[0]["cell"] else None
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4,
                    label=f"MCTS agent{', ' + group if group else ''}"
                    + (f" (points labelled by {varied})" if varied else ""))
        for r in members:
            ax.annotate(_short_label(r["cell"]), (r["dream_ratio"], r["mean"]),
                        textcoords="offset points", xytext=(6, -12), fontsize=8)
    for r in ablation:
        ax.errorbar([r["dream_ratio"]], [r["mean"]], yerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
                    marker="s", color="tab:red", capsize=4, linestyle="none",
                    label="planning-free ablation (policy head, no search)")
        ax.axhline(r["mean"], color="tab:red", linestyle="--", alpha=0.4)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("dream ratio (simulated model steps per real env step, log scale)")
    ax.set_ylabel(f"final evaluation return at {real_steps:,} real steps")
    seeds = max((r["seeds"] for r in rows), default=0)
    ax.set_title(f"{world}: return at a fixed real budget vs dreamed compute\n"
                 f"(mean of {seeds} seed{'s' if seeds != 1 else ''}, bootstrap 95% CI)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _lines(grid: list[dict]) -> dict[str, list[dict]]:
    """Grid cells joined into lines: along the first varied key, one line per value of the rest."""
    lines: dict[str, list[dict]] = {}
    for r in grid:
        rest = ",".join(f"{k}={v}" for k, v in r["cell"][1:])
        lines.setdefault(rest, []).append(r)
    return lines


def _short_label(cell) -> str:
    """The value of the first varied key (the line's position), "agent" for the empty cell."""
    return str(cell[0][1]) if cell else "agent"


def write_report(runs: list[SweepRun], args) -> str:
    """Writes `OUT/report/` (dream_ratio.png, sweep.md, and `dreamer report`'s curves of the same
    runs); returns the markdown table."""
    from dreamer.report import ReportError, build_report

    out = args.out
    report_dir = os.path.join(out, "report")
    os.makedirs(report_dir, exist_ok=True)
    rows = summarise(runs)
    if not rows:
        raise ReportError(f"{out}: no run of the sweep has an evaluation; nothing to report")
    plot_dream_ratio(rows, args.world, args.real_steps, os.path.join(report_dir, "dream_ratio.png"))
    lines = [
        f"# dreamer sweep: {args.world} at {args.real_steps:,} real steps", "",
        "![final return vs dream ratio](dream_ratio.png)", "",
        "| cell | seeds | dream ratio | per real step: search / reanalyse / unroll | "
        "final return (mean [95% CI]) | IQM | per seed | wall s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["name"] + (" (ablation)" if r["ablation"] else "")
        iqm = "-" if r["iqm"] is None else f"{r['iqm']:.1f}"
        seeds = ", ".join(f"{v:.1f}" for v in r["returns"])
        lines.append(
            f"| {name} | {r['seeds']} | {r['dream_ratio']:,.0f} | {r['search']:,.0f} / "
            f"{r['reanalyse']:,.0f} / {r['unroll']:,.0f} | {r['mean']:.1f} [{r['low']:.1f}, "
            f"{r['high']:.1f}] | {iqm} | {seeds} | {r['wall_seconds']:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    folders = [run.folder for run in runs
               if final_returns(run.folder) is not None and run_state(run) == "done"]
    build_report(folders, report_dir, args.threshold)
    # build_report wrote report.md (curves); the sweep's own page links to it.
    text = table + "\nCurves per cell (return vs real and simulated steps): [report.md](report.md)\n"
    with open(os.path.join(report_dir, "sweep.md"), "w") as f:
        f.write(text)
    return table


# --- Slurm ---------------------------------------------------------------------------------------

_SLURM_TASK = r"""# One run: skip it when it is finished at this budget, resume it from its newest finished
# checkpoint (a requeued or resubmitted task), or start it afresh after clearing what a run killed
# before its first checkpoint left. Its output is appended to <run folder>/train.log.
run_task() {
  local folder=$1 budget=$2 needs_eval=$3
  shift 3
  mkdir -p -- "$folder"
  local last=-1 step path
  for path in "$folder"/checkpoints/*/; do
    step=$(basename -- "$path")
    if [[ $step =~ ^[0-9]+$ ]] && (( 10#$step > last )); then last=$((10#$step)); fi
  done
  if (( last >= 0 )); then
    # a checkpoint's step is its real steps, plus the updates of any `dreamer dream` of the run:
    # the ledger written with the newest checkpoint holds the real steps alone
    local real=$last
    if [[ -f $folder/ledger.json ]]; then
      real=$(sed -n 's/^ *"env_steps": \([0-9][0-9]*\),*$/\1/p' -- "$folder/ledger.json")
      [[ $real =~ ^[0-9]+$ ]] || real=$last
    fi
    if (( real >= budget )) && { (( ! needs_eval )) || final_eval "$folder" "$budget"; }; then
      echo "dreamer sweep task ${SLURM_ARRAY_TASK_ID}: $folder is finished at $real real steps"
      exit 0
    fi
    set -- "$@" --resume
  else
    rm -rf -- PARTIAL_ROWS "$folder/tb" "$folder/checkpoints"
  fi
  echo "dreamer sweep task ${SLURM_ARRAY_TASK_ID} on $(hostname): $*" | tee -a "$folder/train.log"
  exec "$@" >>"$folder/train.log" 2>&1
}

# Whether the run's last evaluation row is at or past the budget.
final_eval() {
  local row step
  [[ -f $1/eval.csv ]] || return 1
  row=$(tail -n 1 -- "$1/eval.csv")
  step=${row%%,*}
  [[ $step =~ ^[0-9]+$ ]] && (( 10#$step >= $2 ))
}
"""


def slurm_directives(args) -> list[str]:
    """The `#SBATCH` options besides --array, from --slurm-time, --slurm-partition and the
    --slurm-option lines (a leading '--' is added when missing).

    Raises:
      UserError: a Slurm option without --slurm, an option that is empty, spans lines or sets
        --array (the sweep sets it), or --slurm-max-running <= 0.
    """
    from dreamer.errors import UserError

    given = {"--slurm-option": args.slurm_option, "--slurm-time": args.slurm_time,
             "--slurm-partition": args.slurm_partition, "--slurm-setup": args.slurm_setup,
             "--slurm-max-running": args.slurm_max_running}
    if args.slurm is None:
        named = [flag for flag, value in given.items() if value not in (None, [])]
        if named:
            raise UserError(f"{', '.join(named)}: only with --slurm FILE")
        return []
    if args.slurm_max_running is not None and args.slurm_max_running <= 0:
        raise UserError(f"--slurm-max-running must be > 0, got {args.slurm_max_running}")
    options = []
    if args.slurm_time is not None:
        options.append(("--slurm-time", f"--time={args.slurm_time}"))
    if args.slurm_partition is not None:
        options.append(("--slurm-partition", f"--partition={args.slurm_partition}"))
    options += [("--slurm-option", o.strip() if o.strip().startswith("-") else "--" + o.strip())
                for o in args.slurm_option]
    for flag, option in options:
        if option in ("-", "--") or option.endswith("=") or any(c.isspace() for c in option):
            raise UserError(f"{flag} {option!r}: expected one Slurm option with no spaces, "
                            "e.g. --gres=gpu:1")
        name = option.split("=", 1)[0]
        if name in ("--array", "-a") or (name.startswith("-a") and not name.startswith("--")):
            raise UserError(f"{flag} {option!r}: the sweep sets the array (one task per run); "
                            "use --slurm-max-running to limit the tasks running at once")
    for line in args.slurm_setup:
        if "\n" in line or "\r" in line:
            raise UserError(f"--slurm-setup {line!r}: one shell line per --slurm-setup")
    return [option for _, option in options]


def _comment(text: str) -> str:
    """Text safe inside a `#` comment line (no line breaks)."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _sweep_command(args) -> list[str]:
    """The `dreamer sweep` command that writes this script (to regenerate it)."""
    command = ["dreamer", "sweep", "--world", args.world, "--real-steps", str(args.real_steps),
               "--seeds", str(args.seeds), "--out", args.out]
    if args.preset:
        command += ["--preset", args.preset]
    for item in args.vary:
        command += ["--vary", item]
    for item in args.overrides:
        command += ["--set", item]
    if args.no_ablation:
        command.append("--no-ablation")
    command += ["--slurm", args.slurm]
    for flag, value in (("--slurm-time", args.slurm_time),
                        ("--slurm-partition", args.slurm_partition),
                        ("--slurm-max-running", args.slurm_max_running)):
        if value is not None:
            command += [flag, str(value)]
    command += [f"--slurm-option={o}" for o in args.slurm_option]
    for line in args.slurm_setup:
        command += ["--slurm-setup", line]
    return command


def slurm_script(runs: list[SweepRun], args) -> str:
    """The sbatch script of the sweep: a job array with one task per run.

    Task i runs `dreamer train` for runs[i] (the arguments `train_arguments` gives the local
    sweep's processes, with `--resume` added when the run folder holds a finished checkpoint), so
    the results land in the folders `dreamer sweep` and `dreamer report` read. Every value on a
    command line is shell-quoted.
    """
    import shlex

    directives = slurm_directives(args)
    throttle = "" if args.slurm_max_running is None else f"%{args.slurm_max_running}"
    worlds = sorted({run.config["world"] for run in runs})
    seeds = sorted({run.seed for run in runs})
    cells = list(dict.fromkeys(run.cell_name for run in runs))
    lines = [
        "#!/bin/bash",
        f"# dreamer sweep as a Slurm job array: {len(runs)} runs = {len(worlds)} world(s) x "
        f"{len(seeds)} seed(s) x {len(cells)} config(s), {args.real_steps:,} real steps each.",
        _comment(f"# Worlds: {', '.join(worlds)}"),
        _comment(f"# Configs: {', '.join(cells)}"),
        _comment(f"# Results: {args.out} (shared; the same path on every node)"),
        "# Submit: sbatch THIS_FILE. Each task appends its output to <run folder>/train.log; a task",
        "# resubmitted or requeued (e.g. sbatch --requeue) resumes its run from its newest",
        "# checkpoint, and one whose run is finished exits at once.",
        _comment(f"# Report: dreamer report {shlex.quote(args.out)} --out "
                 f"{shlex.quote(os.path.join(args.out, 'report'))}"),
        _comment(f"# Written by: {shlex.join(_sweep_command(args))}"),
        "#SBATCH --job-name=dreamer-sweep",
        f"#SBATCH --array=0-{len(runs) - 1}{throttle}",
        *(f"#SBATCH {option}" for option in directives),
        "",
        "set -eo pipefail",
        *args.slurm_setup,
        "",
        _SLURM_TASK.replace("PARTIAL_ROWS", " ".join(f'"$folder/{n}"' for n in PARTIAL_ROWS)),
        'case "${SLURM_ARRAY_TASK_ID:?submit this script with sbatch (a job array)}" in',
    ]
    for index, run in enumerate(runs):
        needs_eval = int(run.config["run"]["eval_episodes"] > 0)
        command = ["dreamer", "train", *train_arguments(run, args)]
        lines.append(f"  {index}) run_task {shlex.quote(run.folder)} {args.real_steps} {needs_eval} "
                     f"{shlex.join(command)} ;;")
    lines += ['  *) echo "dreamer sweep: no run for array task $SLURM_ARRAY_TASK_ID '
              f'(0-{len(runs) - 1})" >&2; exit 2 ;;',
              "esac", ""]
    return "\n".join(lines)


def write_slurm(runs: list[SweepRun], args) -> int:
    """`dreamer sweep --slurm FILE`: writes the script (or prints it for '-') and nothing else."""
    from dreamer.errors import UserError

    text = slurm_script(runs, args)
    states = [run_state(run) for run in runs]  # a folder of another config is refused here
    if args.slurm == "-":
        print(text, end="")
        return 0
    if os.path.isdir(args.slurm):
        raise UserError(f"--slurm {args.slurm}: a folder; give the script's file name")
    parent = os.path.dirname(os.path.abspath(args.slurm))
    if not os.path.isdir(parent):
        raise UserError(f"--slurm {args.slurm}: no folder {parent}")
    try:
        with open(args.slurm, "w") as f:
            f.write(text)
    except OSError as e:
        raise UserError(f"--slurm {args.slurm}: cannot write it ({e.strerror})") from None
    counts = ", ".join(f"{states.count(s)} {s}" for s in ("new", "resume", "done") if s in states)
    print(f"dreamer sweep: wrote {args.slurm}: a job array of {len(runs)} tasks ({counts}) -> "
          f"{args.out}")
    print(f"  submit: sbatch {args.slurm}")
    print(f"  report: dreamer report {args.out} --out {os.path.join(args.out, 'report')}")
    return 0


def run(args) -> int:
    """`dreamer sweep`: validates the grid, runs what is not done, writes the report.

    Returns:
      0 when every run finished, 1 when some failed (the report covers the others).
    """
    from dreamer.errors import UserError

    slurm = getattr(args, "slurm", None)
    if slurm is not None:
        if args.dry_run:
            raise UserError("--slurm runs nothing already; give --slurm - to print the script")
        slurm_directives(args)  # the Slurm options are checked before the worlds are built
        # The tasks run on other machines: the shared results folder as an absolute path.
        args.out = os.path.abspath(args.out or default_out(args))
    elif hasattr(args, "slurm"):
        slurm_directives(args)  # a Slurm option without --slurm is named
    runs = plan(args)
    if slurm is not None:
        return write_slurm(runs, args)
    if len({r.config["world"] for r in runs}) > 1 and not args.dry_run:
        raise UserError(f"--world {args.world}: a sweep of several worlds runs on a cluster "
                        "(--slurm FILE) or lists its runs (--dry-run); run one world at a time "
                        "here")
    if args.dry_run:
        for r in runs:
            print(f"{r.folder}  [{run_state(r)}]")
        return 0
    try:
        failed = execute(runs, args)
    except KeyboardInterrupt:
        print("dreamer sweep: stopped; run the same command again to resume the sweep",
              file=sys.stderr)
        return 130
    table = write_report(runs, args)
    print(table, end="")
    print(f"dreamer sweep: report written to {os.path.join(args.out, 'report', 'sweep.md')}")
    if failed:
        print(f"dreamer sweep: {len(failed)} run(s) failed: "
              f"{', '.join(os.path.basename(r.folder) for r in failed)}", file=sys.stderr)
        return 1
    return 0
