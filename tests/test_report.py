"""`dreamer report`: aggregates runs into plots and a table; clear messages for non-runs."""

import json

import numpy as np
import pytest

from dreamer.cli import main
from dreamer.report import bootstrap_interval, interquartile_mean


def _fake_run(folder, seed, returns, world="cartpole"):
    folder.mkdir(parents=True)
    ledger = {"world": world, "seed": seed, "config": {"world": world, "seed": seed, "run": {}},
              "real": {"env_steps": 1000 * len(returns), "frames": 0, "episodes": 1},
              "simulated": {"search": 10, "reanalyse": 20, "unroll": 30, "total": 60},
              "dream_ratio": 0.06, "updates": 1,
              "eval": {"episodes": 10, "mean_return": returns[-1] if returns else None,
                       "std_return": 0.0},
              "wall_seconds": 1.0}
    (folder / "ledger.json").write_text(json.dumps(ledger))
    rows = ["env_steps,updates,simulated,mean_return,std_return,episodes"]
    rows += [f"{1000 * (i + 1)},1,{100 * (i + 1)},{r},0,10" for i, r in enumerate(returns)]
    (folder / "eval.csv").write_text("\n".join(rows) + "\n")


def test_report_aggregates_seeds(tmp_path, capsys):
    for seed, returns in enumerate([[10, 200, 500], [20, 300, 480], [5, 100, 300]]):
        _fake_run(tmp_path / "runs" / f"s{seed}", seed, returns)
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "runs"), "--out", str(out), "--threshold", "450"]) == 0
    text = (out / "report.md").read_text()
    assert "| cartpole | config 1 | 3 | 426.7" in text
    assert "3000, 3000, None" in text
    assert (out / "cartpole.png").stat().st_size > 10_000


@pytest.mark.parametrize("setup, message", [
    ("empty", "not a dreamer run folder and holds no runs"),
    ("no-eval", "has no evaluation yet"),
    ("missing", "no such folder"),
])
def test_report_on_non_runs_gives_one_line(setup, message, tmp_path, capsys):
    target = tmp_path / "x"
    if setup == "empty":
        target.mkdir()
    if setup == "no-eval":
        _fake_run(target, 0, [])
    assert main(["report", str(target), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and message in err and "\n" not in err


def test_statistics_hand_values():
    assert interquartile_mean(np.array([0.0, 1, 2, 3, 4, 5, 6, 100])) == pytest.approx(3.5)
    low, high = bootstrap_interval(np.array([1.0, 1.0, 1.0]))
    assert low == high == 1.0
