"""Resident memory of a long training run: is it flat once the replay is full?

Starts `dreamer train ...` as a subprocess, samples its VmRSS (from /proc/<pid>/status) every
`--interval` seconds into a CSV together with the run's progress (real steps from metrics.jsonl,
replay fill from config.json), stops the run with SIGINT after `--minutes` (it checkpoints), and
prints a table (minutes vs RSS MiB vs fill) and the RSS slope over the samples after the replay
filled.

    python .ci/measure_rss.py --minutes 30 --out runs/rss -- --world minatar/breakout \
        --preset minatar --set replay.capacity=500

Everything after `--` goes to `dreamer train` (`--out` and `--no-progress` are added).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time


def rss_mib(pid: int) -> float | None:
    """VmRSS of `pid` in MiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def last_real_steps(run_dir: str) -> int:
    """The newest `env_steps` in the run's metrics.jsonl (0 before the first learning step)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 4096))
        lines = f.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line)["env_steps"])
        except (ValueError, KeyError):
            continue  # a partial first or last line
    return 0


def replay_rows(run_dir: str) -> int | None:
    """Replay capacity in real steps (rows per stream x streams), from the run's config.json."""
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        return int(config["replay"]["capacity"]) * int(config["run"]["num_envs"])
    except (OSError, ValueError, KeyError):
        return None


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minutes, MiB) points, in MiB per minute."""
    n = len(points)
    if n < 2:
        return float("nan")
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (r - mean_r) for t, r in points) / var if var else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long to sample")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--out", required=True, help="run folder (must not hold a run)")
    p.add_argument("--csv", default=None, help="samples CSV (default <out>/rss.csv)")
    p.add_argument("--table-every", type=float, default=2.0, help="table row every N minutes")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then `dreamer train` args")
    args = p.parse_args()
    train_args = [a for a in args.train_args if a != "--"]
    os.makedirs(args.out, exist_ok=True)
    csv_path = args.csv or os.path.join(args.out, "rss.csv")
    command = [sys.executable, "-m", "dreamer.cli", "train", *train_args, "--out", args.out,
               "--no-progress"]
    log = open(os.path.join(args.out, "train.log"), "w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    print("measuring:", " ".join(command), flush=True)
    start = time.time()
    samples = []  # (minutes, rss MiB, real steps, fill fraction or None)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seconds", "rss_mib", "real_steps", "replay_fill"])
        while proc.poll() is None and time.time() - start < args.minutes * 60:
            rss = rss_mib(proc.pid)
            if rss is None:
                break
            if rss < 16:  # the child has not exec'd Python yet
                time.sleep(0.5)
                continue
            steps, capacity = last_real_steps(args.out), replay_rows(args.out)
            fill = min(1.0, steps / capacity) if capacity else None
            elapsed = time.time() - start
            writer.writerow([f"{elapsed:.1f}", f"{rss:.1f}", steps,
                             "" if fill is None else f"{fill:.3f}"])
            f.flush()
            samples.append((elapsed / 60, rss, steps, fill))
            time.sleep(args.interval)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the run checkpoints and stops
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
    print(f"run exit code {proc.returncode}; samples in {csv_path}")
    if not samples:
        print("no samples")
        return 1
    # real steps come from metrics.jsonl, which the run writes once learning has started
    print(f"{'minutes':>8} {'real steps':>11} {'replay fill':>12} {'RSS MiB':>9}")
    next_row = 0.0
    for i, (minutes, rss, steps, fill) in enumerate(samples):
        if minutes >= next_row or i == len(samples) - 1:
            fill_text = "-" if fill is None else f"{100 * fill:.0f}%"
            print(f"{minutes:8.1f} {steps:11d} {fill_text:>12} {rss:9.1f}")
            next_row += args.table_every
    full = [(m, r) for m, r, _, fill in samples if fill is not None and fill >= 1.0]
    peak = max(r for _, r, _, _ in samples)
    if full:
        print(f"replay full at {full[0][0]:.1f} min: RSS {full[0][1]:.1f} MiB; at the end "
              f"({samples[-1][0]:.1f} min): {samples[-1][1]:.1f} MiB; peak {peak:.1f} MiB; "
              f"slope after fill {slope_per_minute(full):+.3f} MiB/min over {len(full)} samples")
    else:
        print(f"the replay did not fill; end RSS {samples[-1][1]:.1f} MiB, peak {peak:.1f} MiB, "
              f"slope {slope_per_minute([(m, r) for m, r, _, _ in samples]):+.3f} MiB/min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
