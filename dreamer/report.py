"""`dreamer report RUN_DIR ...`: sample-efficiency plots and a markdown table from run folders.

Reads each run's `ledger.json` and `eval.csv`; groups runs by (world, config without the seed and
the real budget); aggregates seeds as the mean with a bootstrap 95% interval (and the interquartile
mean when a group has at least 5 runs, as rliable does). Groups of one world are labelled by the
config fields in which they differ and drawn side by side.

For each world it draws `<world>.png` (evaluation return against real env steps and against
simulated model steps) and `<world>-compute.png` (the dream ratio over the run, and the split of
simulated steps per real step into search, reanalysis and training unroll). Runs that were
dreamed on (`dreamer dream`: evaluations at one real step with growing `dream_updates`) also get
a "Dreaming" table and `<world>-dream.png`: return against the model steps dreamed at that fixed
real budget, from the evaluation before the dream on. Runs on `atari/<game>`
worlds also get human-normalised scores, (score - random) / (human - random), with the reference
scores of the 26 Atari 100k games in `dreamer/data/atari_scores.json`, aggregated over games per
config as rliable does (mean and median of the per-game means, IQM over all runs) with
stratified-bootstrap 95% intervals; Atari games outside the 26 are listed, not aggregated.

Continual runs (`dreamer train --worlds A,B,C`, whose `continual.csv` holds the return on every
world after each phase) get a "Continual" section: per run, the matrix R[i, j] (return on world j
after phase i), each world's forgetting (its best return after an earlier phase minus its return
at the end; worlds before the last) and their average, and `<run>-continual.png`, the return on
each world over the phases.
"""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np

from dreamer.config import flatten_config
from dreamer.errors import UserError


class ReportError(UserError, ValueError):
    """A folder that cannot be reported on; the message says why."""


SIMULATED_PARTS = ("search", "reanalyse", "unroll")


def load_run(path: str) -> dict:
    """Reads one run folder.

    Returns:
      {"path", "ledger" (ledger.json as a dict), "curve": [E, 4] float64 array of
      (real env steps, simulated steps, mean evaluation return, dreamed updates) per
      evaluation; dreamed updates are 0 in files written before `dreamer dream` existed}.

    Raises:
      ReportError: no such folder, not a run folder, or no evaluation yet.
    """
    ledger_path = os.path.join(path, "ledger.json")
    if not os.path.isdir(path):
        raise ReportError(f"{path}: no such folder")
    if not os.path.isfile(ledger_path):
        raise ReportError(f"{path}: not a dreamer run folder (no ledger.json)")
    try:
        with open(ledger_path) as f:
            ledger = json.load(f)
        ledger["world"], ledger["real"]["env_steps"], ledger["simulated"]
    except (ValueError, KeyError, TypeError):
        raise ReportError(f"{path}: ledger.json is not a dreamer ledger (unreadable)") from None
    curve = []
    eval_path = os.path.join(path, "eval.csv")
    if os.path.isfile(eval_path):
        with open(eval_path) as f:
            for row in csv.DictReader(f):
                try:
                    if row["mean_return"] not in ("", "None"):
                        curve.append((int(row["env_steps"]), int(row["simulated"]),
                                      float(row["mean_return"]),
                                      int(row.get("dream_updates") or 0)))
                except (KeyError, TypeError, ValueError):
                    raise ReportError(f"{path}: eval.csv has a malformed row: {row}") from None
    if not curve:
        raise ReportError(f"{path}: the run has no evaluation yet (eval.csv is empty)")
    continual = []
    continual_path = os.path.join(path, "continual.csv")
    if os.path.isfile(continual_path):
        with open(continual_path) as f:
            try:
                continual = [(int(r["phase"]), r["trained_world"], r["eval_world"],
                              float(r["mean_return"])) for r in csv.DictReader(f)]
            except (KeyError, TypeError, ValueError):
                raise ReportError(f"{path}: continual.csv has a malformed row") from None
    return {"path": path, "ledger": ledger, "curve": np.array(curve, dtype=np.float64),
            "continual": continual}


def _comparable_config(ledger: dict) -> dict:
    """The run's config without what differs between seeds of one experiment."""
    config = json.loads(json.dumps(ledger.get("config", {})))
    config.pop("seed", None)
    config.pop("world", None)
    config.get("run", {}).pop("real_steps", None)
    return config


def _group_key(ledger: dict) -> tuple[str, str]:
    return ledger["world"], json.dumps(_comparable_config(ledger), sort_keys=True)


def config_labels(configs: list[dict]) -> list[str]:
    """Names configs by the dotted fields in which they differ, e.g. "search.num_simulations=8".
    A model-free baseline (`dreamer baseline`: its config names an `algorithm`) is named by its
    algorithm, library and world options, e.g. "dqn (rejax)", and the others by their differences
    alone.

    Args:
      configs: nested config dicts of one world.

    Returns:
      One label per config; "config N" where the differences do not make short distinct names.
    """
    baseline = [_baseline_label(c) if "algorithm" in c else None for c in configs]
    agents = [i for i, b in enumerate(baseline) if b is None]
    labels = list(baseline)
    named = _difference_labels([configs[i] for i in agents])
    if len(agents) == 1 and len(configs) > 1:
        named = ["EfficientZero"]  # beside baselines, the one agent config
    for i, label in zip(agents, named, strict=True):
        labels[i] = label
    if len(set(labels)) < len(labels):
        return [f"config {i + 1}" for i in range(len(configs))]
    return labels


def _baseline_label(config: dict) -> str:
    """"dqn (rejax)", and the world options it ran with, e.g. "dqn (rejax), sticky_action_prob=0.1"."""
    options = "".join(f", {k}={v}" for k, v in sorted(config.get("world_options", {}).items()))
    return f"{config['algorithm']} ({config.get('library', 'model-free')}){options}"


def _difference_labels(configs: list[dict]) -> list[str]:
    if len(configs) < 2:
        return [f"config {i + 1}" for i in range(len(configs))]
    flat = [flatten_config(c) for c in configs]
    keys = sorted(set().union(*flat))
    differing = [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]
    labels = [", ".join(f"{k}={f.get(k)}" for k in differing) for f in flat]
    if len(set(labels)) < len(labels) or any(len(label) > 80 for label in labels):
        return [f"config {i + 1}" for i in range(len(configs))]
    return labels


def bootstrap_interval(values: np.ndarray, seed: int = 0, samples: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of `values` ([N]); (v, v) for one value."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (samples, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def interquartile_mean(values: np.ndarray) -> float:
    """Mean of the middle 50% of `values` ([N]): the lowest and highest floor(N/4) are dropped
    (rliable's IQM)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    n = len(values)
    return float(values[n // 4 : n - n // 4].mean())


def _count(x: float) -> str:
    """A model-step count per real step: whole numbers from 100 up, two decimals below (a
    ratio of 0.06 is not 0)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"


def steps_to_threshold(curve: np.ndarray, threshold: float) -> int | None:
    """Real env steps at the first evaluation whose mean return is >= threshold (None if never).

    Args:
      curve: [E, 3+] (real steps, simulated steps, mean return, ...) per evaluation.
    """
    hits = np.nonzero(curve[:, 2] >= threshold)[0]
    return int(curve[hits[0], 0]) if len(hits) else None


def dream_segments(curve: np.ndarray) -> list[np.ndarray]:
    """The dreams in a run's evaluations: each a run of consecutive evaluations at one real step
    whose dreamed updates grow past the first's (the evaluation before the dream).

    Args:
      curve: [E, 4] (real steps, simulated steps, mean return, dreamed updates), `load_run`'s.

    Returns:
      One [S, 4] array (S >= 2 evaluations, the first before the dream) per dream.
    """
    segments, start = [], 0
    for end in range(1, len(curve) + 1):
        if end == len(curve) or curve[end, 0] != curve[start, 0]:
            if end - start >= 2 and curve[end - 1, 3] > curve[start, 3]:
                segments.append(curve[start:end])
            start = end
    return segments


def _dream_section(world: str, runs: list[dict], out_dir: str, plt) -> list[str]:
    """Markdown lines (and `<world>-dream.png`) for the dreams among a world's runs; none when
    no run was dreamed on."""
    dreams = [(run, segment) for run in runs for segment in dream_segments(run["curve"])]
    if not dreams:
        return []
    lines = [f"### {world}: dreaming at a fixed real budget", "",
             "Evaluations of `dreamer dream` runs: the real steps stay put while learner updates "
             "on the stored replay add simulated model steps. Dreamed model steps count from "
             "the evaluation before the dream.", "",
             "| run | real steps | dreamed updates | dreamed model steps | return before | "
             "return after each evaluation | best |", "|---|---|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, (run, segment) in enumerate(dreams):
        dreamed = segment[:, 1] - segment[0, 1]
        returns = segment[:, 2]
        best = int(np.argmax(returns))
        lines.append(
            f"| {run['path']} | {int(segment[0, 0]):,} | {int(segment[-1, 3] - segment[0, 3]):,} | "
            f"{int(dreamed[-1]):,} | {returns[0]:.2f} | "
            f"{', '.join(f'{r:.2f}' for r in returns[1:])} | {returns[best]:.2f} at "
            f"{int(segment[best, 3] - segment[0, 3]):,} updates |")
        ax.plot(dreamed, returns, marker=".", color=f"C{index % 10}",
                label=f"{run['path']} ({int(segment[0, 0]):,} real steps)")
    ax.set_xlabel("model steps dreamed (no real step)")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{world}: return vs dreamed model steps at a fixed real budget")
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    name = world.replace("/", "-").replace(":", "-")
    fig.savefig(os.path.join(out_dir, f"{name}-dream.png"), dpi=110)
    plt.close(fig)
    return [*lines, "", f"![{world}: dreaming]({name}-dream.png)", ""]


# --- Atari human-normalised scores ---------------------------------------------------------------

def continual_matrix(rows: list[tuple]) -> tuple[list[str], list[str], np.ndarray]:
    """R[i, j] from continual.csv rows.

    Args:
      rows: (phase, trained world, evaluated world, mean return) per row.

    Returns:
      (trained world of each phase [P], evaluated worlds [W], R [P, W] with NaN where missing).
    """
    phases = sorted({r[0] for r in rows})
    trained = {r[0]: r[1] for r in rows}
    evaluated = list(dict.fromkeys(r[2] for r in rows))
    matrix = np.full((len(phases), len(evaluated)), np.nan)
    for phase, _, world, value in rows:
        matrix[phases.index(phase), evaluated.index(world)] = value
    return [trained[p] for p in phases], evaluated, matrix


def forgetting(matrix: np.ndarray) -> np.ndarray:
    """[W - 1] each world's forgetting but the last's: max_{i < P-1} R[i, j] - R[P-1, j] (NaN
    with fewer than 2 phases). A sequence of W worlds learned in order has P = W phases."""
    if matrix.shape[0] < 2:
        return np.full((max(matrix.shape[1] - 1, 0),), np.nan)
    return np.nanmax(matrix[:-1, :-1], axis=0) - matrix[-1, :-1]


def _continual_section(run: dict, out_dir: str, plt) -> list[str]:
    """Markdown lines (and `<run>-continual.png`) for a continual run; none for another run."""
    if not run.get("continual"):
        return []
    trained, evaluated, matrix = continual_matrix(run["continual"])
    lines = [f"### {run['path']}", "",
             "| after phase | " + " | ".join(evaluated) + " |",
             "|---|" + "---|" * len(evaluated)]
    for phase, world in enumerate(trained):
        cells = " | ".join("-" if np.isnan(v) else f"{v:.2f}" for v in matrix[phase])
        lines.append(f"| after {world} | {cells} |")
    lost = forgetting(matrix)
    if lost.size and not np.all(np.isnan(lost)):
        each = ", ".join(f"{w} {v:.2f}" for w, v in zip(evaluated, lost, strict=False))
        lines += ["", f"Forgetting: {each}; average {np.nanmean(lost):.2f}."]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", run["path"]).strip("-") or "run"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for j, world in enumerate(evaluated):
        ax.plot(range(len(trained)), matrix[:, j], marker="o", label=world)
    ax.set_xticks(range(len(trained)), [_wrap(f"after {w}", 18) for w in trained], fontsize=8)
    ax.set_ylabel("greedy return")
    ax.set_title("return on each world after each phase")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, f"{name}-continual.png"), dpi=110)
    plt.close(fig)
    return [*lines, "", f"![{run['path']}: continual]({name}-continual.png)", ""]


def atari_reference_scores() -> dict[str, dict[str, float]]:
    """{game: {"random": r, "human": h}} for the 26 Atari 100k games (ALE ROM ids)."""
    path = os.path.join(os.path.dirname(__file__), "data", "atari_scores.json")
    with open(path) as f:
        return json.load(f)["games"]


def human_normalized_score(game: str, score: float, references: dict | None = None) -> float:
    """(score - random) / (human - random) for an Atari game (e.g. "pong" or "atari/pong").

    Raises:
      ReportError: the game has no reference scores.
    """
    references = references or atari_reference_scores()
    game = game.removeprefix("atari/")
    if game not in references:
        raise ReportError(f"no human/random reference scores for Atari game {game!r}")
    ref = references[game]
    return (score - ref["random"]) / (ref["human"] - ref["random"])


def stratified_bootstrap(scores: dict[str, np.ndarray], reps: int = 2000, seed: int = 0,
                         size: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of the mean, median and IQM of human-normalised scores, with
    rliable's stratified resampling: each resample draws every game's runs with replacement from
    that game's own runs (the games themselves are kept), as `rliable.library.
    StratifiedBootstrap` does with `task_bootstrap=False`.

    Args:
      scores: {game: [R_g] HNS of each run}; games are resampled in sorted order, so the
        intervals depend on the scores and `seed` alone.
      reps: bootstrap resamples.
      seed: the numpy generator's seed.
      size: the interval's coverage.

    Returns:
      {"mean" | "median" | "iqm": (low, high)}.
    """
    rng = np.random.default_rng(seed)
    per_game, pooled = [], []
    for game in sorted(scores):
        values = np.asarray(scores[game], dtype=np.float64)
        resampled = values[rng.integers(0, len(values), (reps, len(values)))]  # [reps, R_g]
        per_game.append(resampled.mean(axis=1))
        pooled.append(resampled)
    means = np.stack(per_game, axis=1)  # [reps, games]
    runs = np.sort(np.concatenate(pooled, axis=1), axis=1)  # [reps, all runs]
    cut = runs.shape[1] // 4
    statistics = {"mean": means.mean(axis=1), "median": np.median(means, axis=1),
                  "iqm": runs[:, cut:runs.shape[1] - cut].mean(axis=1)}
    tail = 100 * (1 - size) / 2
    return {name: (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
            for name, values in statistics.items()}


def atari_summary(final_returns: dict[str, list[float]], reps: int = 2000, seed: int = 0) -> dict:
    """Human-normalised scores of Atari runs, aggregated as rliable does.

    Args:
      final_returns: {game or "atari/<game>": [final evaluation return of each run]}.
      reps, seed: the stratified bootstrap's resamples and seed (see `stratified_bootstrap`).

    Returns:
      {"games": {game: mean HNS over its runs}, "hns": {game: [HNS of each run]},
       "mean": mean over games of the per-game means, "median": their median, "iqm": the
       interquartile mean of all runs' HNS pooled over games (rliable's `aggregate_iqm`, a 25%
       trimmed mean over runs x games), "intervals": {"mean" | "median" | "iqm": (low, high)}
       95% stratified-bootstrap intervals, "runs": number of runs aggregated,
       "unknown": {game: [returns]} of games without reference scores (not aggregated),
       "missing": the Atari 100k games with no run}.
    """
    references = atari_reference_scores()
    per_game, hns, unknown = {}, {}, {}
    for game, returns in sorted(final_returns.items()):
        game = game.removeprefix("atari/")
        if game not in references:
            unknown[game] = [float(r) for r in returns]
            continue
        hns[game] = [human_normalized_score(game, r, references) for r in returns]
        per_game[game] = float(np.mean(hns[game]))
    missing = sorted(set(references) - set(per_game))
    if not per_game:
        return {"games": {}, "hns": {}, "mean": None, "median": None, "iqm": None,
                "intervals": {}, "runs": 0, "unknown": unknown, "missing": missing}
    means = np.array(list(per_game.values()))
    pooled = np.concatenate([np.array(v) for v in hns.values()])
    return {"games": per_game, "hns": hns, "mean": float(means.mean()),
            "median": float(np.median(means)), "iqm": interquartile_mean(pooled),
            "intervals": stratified_bootstrap({g: np.array(v) for g, v in hns.items()}, reps, seed),
            "runs": len(pooled), "unknown": unknown, "missing": missing}


# --- the report ----------------------------------------------------------------------------------

def _find_runs(paths: list[str]) -> tuple[list[dict], list[str]]:
    """Loads the runs named or held (one level down) by `paths`; returns (runs, skipped notes).

    A folder named directly must be a run with an evaluation; runs found inside a folder of runs
    that have no evaluation yet are skipped (and listed), so a sweep in progress can be reported.
    """
    runs, skipped = [], []
    for path in paths:
        if not os.path.isdir(path):
            raise ReportError(f"{path}: no such folder")
        if os.path.isfile(os.path.join(path, "ledger.json")):
            runs.append(load_run(path))
            continue
        found = sorted(os.path.join(path, d) for d in os.listdir(path)
                       if os.path.isfile(os.path.join(path, d, "ledger.json")))
        if not found:
            raise ReportError(f"{path}: not a dreamer run folder and holds no runs")
        for run_path in found:
            try:
                runs.append(load_run(run_path))
            except ReportError as e:
                skipped.append(str(e))
        if not runs:
            raise ReportError(f"{path}: none of its {len(found)} runs has an evaluation yet")
    return runs, skipped


def _aligned(members: list[dict]) -> np.ndarray:
    """[R, E, 4] curves cut to the evaluation points all members share."""
    length = min(len(m["curve"]) for m in members)
    return np.stack([m["curve"][:length] for m in members])


def build_report(paths: list[str], out_dir: str, threshold: float | None = None) -> str:
    """Writes PNG plots and report.md to `out_dir`; returns the markdown.

    Args:
      paths: run folders, or folders whose subfolders are runs.
      out_dir: where the plots and report.md go (created).
      threshold: if given, the table reports the real steps each run needed to reach it.

    Raises:
      ReportError: a path that is not a run (or holds none), or a run with no evaluation.
    """
    if not paths:
        raise ReportError("no run folders given")
    runs, skipped = _find_runs(paths)
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault(_group_key(run["ledger"]), []).append(run)
    os.makedirs(out_dir, exist_ok=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# dreamer report", "",
             "Final return: the last evaluation of each run (mean of its evaluation episodes); "
             "seeds aggregated as the mean with a percentile-bootstrap 95% interval, and the "
             "interquartile mean (IQM) when a config has at least 5 runs. Dream ratio: simulated "
             "(latent model) steps per real env step, from the ledger.", "",
             "| world | config | runs | real steps | final return (mean [95% CI]) | IQM | "
             "dream ratio | per real step: search / reanalyse / unroll | "
             f"real steps to {'threshold' if threshold is None else f'{threshold:g}'} |",
             "|---|---|---|---|---|---|---|---|---|"]
    worlds_seen = sorted({key[0] for key in groups})
    images, config_lines, atari_returns, dream_lines = [], [], {}, []
    for world in worlds_seen:
        world_groups = sorted((key, members) for key, members in groups.items() if key[0] == world)
        labels = config_labels([json.loads(key[1]) for key, _ in world_groups])
        order = sorted(range(len(labels)), key=lambda i: _natural_key(labels[i]))
        world_groups, labels = [world_groups[i] for i in order], [labels[i] for i in order]
        height = 4.5 + 0.2 * len(world_groups)
        fig, axes = plt.subplots(1, 2, figsize=(12, height))
        cfig, caxes = plt.subplots(1, 2, figsize=(12, height))
        for index, ((key, members), label) in enumerate(zip(world_groups, labels, strict=True)):
            color = f"C{index % 10}"
            finals = np.array([m["curve"][-1, 2] for m in members])
            if world.startswith("atari/"):
                # Atari runs of one config (over games) are aggregated together.
                atari_returns.setdefault(key[1], {}).setdefault(world, []).extend(finals.tolist())
            low, high = bootstrap_interval(finals)
            iqm = f"{interquartile_mean(finals):.1f}" if len(finals) >= 5 else "-"
            ratio = np.mean([m["ledger"]["dream_ratio"] for m in members])
            env_steps = np.array([m["ledger"]["real"]["env_steps"] for m in members], np.float64)
            per_step = {k: float(np.mean(np.array([m["ledger"]["simulated"][k] for m in members],
                                                  np.float64) / np.maximum(env_steps, 1)))
                        for k in SIMULATED_PARTS}
            reach = "-"
            if threshold is not None:
                steps = [steps_to_threshold(m["curve"], threshold) for m in members]
                hit = [s for s in steps if s is not None]
                reach = (f"{len(hit)}/{len(steps)} runs; mean {np.mean(hit):,.0f} "
                         f"({', '.join('never' if s is None else str(s) for s in steps)})"
                         if hit else f"0/{len(steps)} runs")
            lines.append(
                f"| {world} | {label} | {len(members)} | {int(env_steps.mean()):,} | "
                f"{finals.mean():.1f} [{low:.1f}, {high:.1f}] | {iqm} | {_count(ratio)} | "
                f"{_count(per_step['search'])} / {_count(per_step['reanalyse'])} / "
                f"{_count(per_step['unroll'])} | {reach} |"
            )
            config_lines.append(f"- {world} {label}: {', '.join(m['path'] for m in members)}")
            stacked = _aligned(members)
            mean = stacked[:, :, 2].mean(axis=0)
            spread = np.array([bootstrap_interval(stacked[:, i, 2]) for i in range(stacked.shape[1])])
            legend = f"{label} ({len(members)} run{'s' if len(members) != 1 else ''})"
            # a model-free run (nothing simulated) has no place on the log-scaled simulated axes
            dreamed = bool(stacked[:, :, 1].max() > 0)
            for ax, column in ((axes[0], 0), (axes[1], 1))[:2 if dreamed else 1]:
                x = stacked[:, :, column].mean(axis=0)
                ax.plot(x, mean, marker=".", color=color, label=legend)
                ax.fill_between(x, spread[:, 0], spread[:, 1], color=color, alpha=0.2)
            # Dream ratio over the run, from the evaluation points (simulated / real so far).
            real, simulated = stacked[:, :, 0].mean(axis=0), stacked[:, :, 1].mean(axis=0)
            if dreamed:
                caxes[0].plot(real, simulated / np.maximum(real, 1), marker=".", color=color,
                              label=legend)
            left = 0.0
            for part, hatch in zip(SIMULATED_PARTS, ("", "//", ".."), strict=True):
                caxes[1].barh(index, per_step[part], left=left, color=color, hatch=hatch,
                              edgecolor="black", alpha=0.8,
                              label=part if index == 0 else None)
                left += per_step[part]
        if threshold is not None:
            for ax in axes:
                ax.axhline(threshold, color="gray", linestyle=":", label=f"threshold {threshold:g}")
        axes[0].set_xlabel("real env steps")
        axes[1].set_xlabel("simulated model steps (log scale)")
        axes[1].set_xscale("log")
        for ax in axes:
            ax.set_ylabel("evaluation return (mean over seeds, 95% CI)")
            ax.grid(alpha=0.3)
        axes[0].set_title(f"{world}: return vs real steps")
        axes[1].set_title(f"{world}: return vs simulated (dreamed) steps")
        _legend_below(fig, axes[0])
        name = world.replace("/", "-").replace(":", "-")
        fig.savefig(os.path.join(out_dir, f"{name}.png"), dpi=110)
        plt.close(fig)
        caxes[0].set_xlabel("real env steps")
        caxes[0].set_ylabel("dream ratio (simulated steps per real step, log scale)")
        caxes[0].set_yscale("log")
        caxes[0].set_title(f"{world}: dream ratio over the run")
        caxes[0].grid(alpha=0.3, which="both")
        caxes[1].set_yticks(range(len(labels)), [_wrap(label) for label in labels], fontsize=8)
        caxes[1].set_xlabel("simulated model steps per real step (at the end of the run)")
        caxes[1].set_title(f"{world}: where the simulated steps go")
        from matplotlib.patches import Patch

        caxes[1].legend(handles=[Patch(facecolor="white", edgecolor="black", hatch=hatch, label=part)
                                 for part, hatch in zip(SIMULATED_PARTS, ("", "//", ".."), strict=True)],
                        title="simulated in", fontsize=8)
        caxes[1].grid(alpha=0.3, axis="x")
        _legend_below(cfig, caxes[0])
        cfig.savefig(os.path.join(out_dir, f"{name}-compute.png"), dpi=110)
        plt.close(cfig)
        images.append(f"![{world}: return]({name}.png)\n\n![{world}: dreamed compute]({name}-compute.png)")
        dream_lines += _dream_section(world, [m for _, members in world_groups for m in members],
                                      out_dir, plt)
    lines += ["", *images]
    if dream_lines:
        lines += ["", "## Dreaming", "", *dream_lines]
    continual_lines = [line for run in runs for line in _continual_section(run, out_dir, plt)]
    if continual_lines:
        lines += ["", "## Continual", "",
                  "Runs that learned a sequence of worlds: R[i, j], the greedy return on world j "
                  "after phase i (trained on the row's world), from continual.csv. Forgetting of "
                  "a world: its best return after an earlier phase minus its return after the "
                  "last.", "", *continual_lines]
    if atari_returns:
        lines += ["", *_atari_section(atari_returns)]
    lines += ["", "## Runs per config", "", *config_lines]
    if skipped:
        lines += ["", "## Skipped (no evaluation yet)", "", *(f"- {note}" for note in skipped)]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    return text


def _legend_below(fig, ax) -> None:
    """One legend for the figure, under the axes, so it never covers a curve."""
    handles, labels = ax.get_legend_handles_labels()
    columns = 1 if max((len(label) for label in labels), default=0) > 45 else 2
    rows = -(-len(labels) // columns)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    bottom = (0.1 + 0.17 * rows) / fig.get_figheight()  # ~0.17 inch per 8-point legend row
    fig.tight_layout(rect=(0, min(0.45, bottom), 1, 1))


def _natural_key(label: str) -> list:
    """Sorts "x=4" before "x=16": numbers in a label compare as numbers."""
    return [(0, float(part), "") if _is_number(part) else (1, 0.0, part)
            for part in re.split(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)", label) if part]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _wrap(label: str, width: int = 28) -> str:
    parts, line = [], ""
    for word in label.split(", "):
        if line and len(line) + len(word) > width:
            parts.append(line)
            line = word
        else:
            line = f"{line}, {word}" if line else word
    return "\n".join([*parts, line])


def _atari_section(atari_returns: dict[str, dict[str, list[float]]]) -> list[str]:
    """Markdown lines: per config (over games), the human-normalised score of each game and the
    mean / median / IQM over games with their stratified-bootstrap intervals; Atari games without
    reference scores are listed, not aggregated.

    Args:
      atari_returns: {config key (`_group_key`'s second part): {"atari/<game>": [final returns]}}.
    """
    references = atari_reference_scores()
    keys = sorted(atari_returns)
    labels = dict(zip(keys, config_labels([json.loads(k) for k in keys]), strict=True))
    lines = ["## Atari: human-normalised scores", "",
             "HNS = (score - random) / (human - random), with the random and human reference "
             "scores of the 26 Atari 100k games (dreamer/data/atari_scores.json, from dqn_zoo's "
             "atari_data.py). As rliable computes them: mean and median over games of each "
             "game's mean HNS over its runs, IQM the mean of the middle 50% of all runs' HNS; "
             "95% intervals by a stratified bootstrap (each game's runs resampled, 2,000 "
             "resamples, seed 0)."]
    for key in keys:
        summary = atari_summary(atari_returns[key])
        returns = {world.removeprefix("atari/"): r for world, r in atari_returns[key].items()}
        if len(keys) > 1:
            lines += ["", f"### {labels[key]}"]
        if summary["games"]:
            lines += ["", "| game | runs | final return (mean) | random | human | HNS (mean) | "
                      "HNS per run |", "|---|---|---|---|---|---|---|"]
            for game, hns in summary["games"].items():
                ref = references[game]
                lines.append(f"| {game} | {len(returns[game])} | {np.mean(returns[game]):.1f} | "
                             f"{ref['random']:g} | {ref['human']:g} | {hns:.3f} | "
                             f"{', '.join(f'{v:.3f}' for v in summary['hns'][game])} |")
            lines += ["", f"Over {len(summary['games'])} game(s), {summary['runs']} run(s): mean "
                      f"HNS {summary['mean']:.3f}, median HNS {summary['median']:.3f}, IQM HNS "
                      f"{summary['iqm']:.3f}.", "",
                      "| aggregate HNS | estimate | 95% CI |", "|---|---|---|"]
            for name, title in (("mean", "mean"), ("median", "median"), ("iqm", "IQM")):
                low, high = summary["intervals"][name]
                lines.append(f"| {title} | {summary[name]:.3f} | [{low:.3f}, {high:.3f}] |")
            if summary["missing"]:
                lines += ["", f"{len(summary['missing'])} of the 26 Atari 100k games have no run "
                          f"(not comparable with the papers' 26-game figures): "
                          f"{', '.join(summary['missing'])}."]
        if summary["unknown"]:
            lines += ["", "Not aggregated (not an Atari 100k game, no reference scores): " + "; ".join(
                f"atari/{game} ({len(r)} run{'s' if len(r) != 1 else ''}, final return mean "
                f"{np.mean(r):.1f})" for game, r in summary["unknown"].items()) + "."]
    return lines
