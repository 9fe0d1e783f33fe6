"""`dreamer report RUN_DIR ...`: sample-efficiency plots and a markdown table from run folders.

Reads each run's `ledger.json` and `eval.csv`; groups runs by (world, config without the seed);
aggregates seeds as the mean with a bootstrap 95% interval (and the interquartile mean when a group
has at least 5 runs, as rliable does).
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np


class ReportError(ValueError):
    """A folder that cannot be reported on; the message says why."""


def load_run(path: str) -> dict:
    """Reads one run folder: its ledger and its evaluation curve."""
    ledger_path = os.path.join(path, "ledger.json")
    if not os.path.isdir(path):
        raise ReportError(f"{path}: no such folder")
    if not os.path.isfile(ledger_path):
        raise ReportError(f"{path}: not a dreamer run folder (no ledger.json)")
    with open(ledger_path) as f:
        ledger = json.load(f)
    curve = []
    eval_path = os.path.join(path, "eval.csv")
    if os.path.isfile(eval_path):
        with open(eval_path) as f:
            for row in csv.DictReader(f):
                if row["mean_return"] not in ("", "None"):
                    curve.append((int(row["env_steps"]), int(row["simulated"]),
                                  float(row["mean_return"])))
    if not curve:
        raise ReportError(f"{path}: the run has no evaluation yet (eval.csv is empty)")
    return {"path": path, "ledger": ledger, "curve": np.array(curve, dtype=np.float64)}


def _group_key(ledger: dict) -> tuple[str, str]:
    config = dict(ledger["config"])
    config.pop("seed", None)
    run = dict(config.get("run", {}))
    run.pop("real_steps", None)
    config["run"] = run
    return ledger["world"], json.dumps(config, sort_keys=True)


def bootstrap_interval(values: np.ndarray, seed: int = 0, samples: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean."""
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (samples, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def interquartile_mean(values: np.ndarray) -> float:
    """Mean of the middle 50% of values (rliable's IQM)."""
    values = np.sort(values)
    n = len(values)
    return float(values[n // 4 : n - n // 4].mean())


def steps_to_threshold(curve: np.ndarray, threshold: float) -> int | None:
    hits = np.nonzero(curve[:, 2] >= threshold)[0]
    return int(curve[hits[0], 0]) if len(hits) else None


def build_report(paths: list[str], out_dir: str, threshold: float | None = None) -> str:
    """Writes PNG plots and report.md to `out_dir`; returns the markdown."""
    if not paths:
        raise ReportError("no run folders given")
    runs = []
    for path in paths:
        found = [path]
        if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "ledger.json")):
            found = sorted(os.path.join(path, d) for d in os.listdir(path)
                           if os.path.isfile(os.path.join(path, d, "ledger.json")))
            if not found:
                raise ReportError(f"{path}: not a dreamer run folder and holds no runs")
        runs += [load_run(p) for p in found]
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault(_group_key(run["ledger"]), []).append(run)
    os.makedirs(out_dir, exist_ok=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# dreamer report", "",
             "| world | config | runs | final return (mean [95% CI]) | IQM | dream ratio | "
             "simulated: search / reanalyse / unroll | real steps to threshold |",
             "|---|---|---|---|---|---|---|---|"]
    worlds_seen = sorted({key[0] for key in groups})
    images = []
    for world in worlds_seen:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for index, (_key, members) in enumerate(sorted(g for g in groups.items() if g[0][0] == world)):
            label = f"config {index + 1}"
            finals = np.array([m["curve"][-1, 2] for m in members])
            low, high = bootstrap_interval(finals)
            iqm = f"{interquartile_mean(finals):.1f}" if len(finals) >= 5 else "-"
            ratio = np.mean([m["ledger"]["dream_ratio"] for m in members])
            sim = {k: int(np.mean([m["ledger"]["simulated"][k] for m in members]))
                   for k in ("search", "reanalyse", "unroll")}
            reach = "-"
            if threshold is not None:
                reach = ", ".join(str(steps_to_threshold(m["curve"], threshold)) for m in members)
            lines.append(
                f"| {world} | {label} | {len(members)} | {finals.mean():.1f} [{low:.1f}, {high:.1f}]"
                f" | {iqm} | {ratio:.0f} | {sim['search']:,} / {sim['reanalyse']:,} / "
                f"{sim['unroll']:,} | {reach} |"
            )
            # Curves are aligned on the evaluation points all members share.
            length = min(len(m["curve"]) for m in members)
            stacked = np.stack([m["curve"][:length] for m in members])
            mean = stacked[:, :, 2].mean(axis=0)
            spread = np.array([bootstrap_interval(stacked[:, i, 2]) for i in range(length)])
            for ax, column, unit in ((axes[0], 0, "real env steps"),
                                     (axes[1], 1, "simulated model steps")):
                x = stacked[:, :, column].mean(axis=0)
                ax.plot(x, mean, label=f"{label} ({len(members)} runs)")
                ax.fill_between(x, spread[:, 0], spread[:, 1], alpha=0.2)
                ax.set_xlabel(unit)
                ax.set_ylabel("evaluation return (mean, 95% CI)")
        axes[0].set_title(f"{world}: return vs real steps")
        axes[1].set_title(f"{world}: return vs simulated steps")
        axes[1].set_xscale("log")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        name = f"{world.replace('/', '-').replace(':', '-')}.png"
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        images.append(f"![{world}]({name})")
    lines += ["", *images, "", "## Configs", ""]
    for world in worlds_seen:
        for index, (_key, members) in enumerate(sorted(g for g in groups.items() if g[0][0] == world)):
            lines.append(f"- {world} config {index + 1}: {', '.join(m['path'] for m in members)}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    return text
