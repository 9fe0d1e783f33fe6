"""`dreamer report`: aggregates runs into plots and a table; clear messages for non-runs."""

import json

import numpy as np
import pytest

from dreamer.cli import main
from dreamer.report import (
    atari_summary,
    bootstrap_interval,
    config_labels,
    human_normalized_score,
    interquartile_mean,
)

PER_STEP = {"search": 1234.4, "reanalyse": 56.7, "unroll": 7.8}
"""Simulated steps per real step in a fake run (times its `scale`): values whose every column of
the table prints non-zero, with thousands separators and rounding to check."""


def _fake_run(folder, seed, returns, world="cartpole", search=None, scale=None):
    """A run folder with one evaluation per return, 1,000 real steps apart; its simulated steps are
    PER_STEP x scale (default 1 + seed / 10) per real step, and its dream ratio their sum."""
    folder.mkdir(parents=True)
    scale = 1 + seed / 10 if scale is None else scale
    env_steps = 1000 * len(returns)
    simulated = {k: round(v * scale * env_steps) for k, v in PER_STEP.items()}
    simulated["total"] = sum(simulated.values())
    config = {"world": world, "seed": seed, "run": {}, "search": search or {"num_simulations": 8}}
    ledger = {"world": world, "seed": seed, "config": config,
              "real": {"env_steps": env_steps, "frames": 0, "episodes": 1},
              "simulated": simulated,
              "dream_ratio": simulated["total"] / max(env_steps, 1), "updates": 1,
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
    # Final returns 500, 480, 300: mean 426.7. With 3 runs each of the 27 resamples has chance
    # 1/27 = 3.7% > 2.5%, so the bootstrap's 2.5% and 97.5% points are the all-300 and all-500
    # resamples. No IQM under 5 runs. Scales 1, 1.1, 1.2 (mean 1.1): dream ratio
    # 1298.9 x 1.1 = 1428.79; per real step 1234.4, 56.7, 7.8 x 1.1 = 1357.84, 62.37, 8.58.
    assert ("| cartpole | config 1 | 3 | 3,000 | 426.7 [300.0, 500.0] | - | 1,429 | "
            "1,358 / 62.37 / 8.58 | 2/3 runs; mean 3,000 (3000, 3000, never) |") in text.splitlines()
    assert (out / "cartpole.png").stat().st_size > 10_000
    assert (out / "cartpole-compute.png").stat().st_size > 10_000


def test_report_puts_configs_side_by_side_and_skips_runs_without_eval(tmp_path):
    _fake_run(tmp_path / "runs" / "a", 0, [10, 20], search={"num_simulations": 4})
    _fake_run(tmp_path / "runs" / "b", 0, [30, 40], search={"num_simulations": 16})
    _fake_run(tmp_path / "runs" / "c", 1, [], search={"num_simulations": 16})  # still running
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "runs"), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    lines = text.splitlines()
    # one run per config: the interval is its one value; no threshold given
    assert ("| cartpole | search.num_simulations=4 | 1 | 2,000 | 20.0 [20.0, 20.0] | - | 1,299 | "
            "1,234 / 56.70 / 7.80 | - |") in lines
    assert ("| cartpole | search.num_simulations=16 | 1 | 2,000 | 40.0 [40.0, 40.0] | - | 1,299 | "
            "1,234 / 56.70 / 7.80 | - |") in lines
    assert "## Skipped (no evaluation yet)" in text and "runs/c" in text


def test_config_labels_name_the_differing_fields():
    configs = [{"search": {"num_simulations": 4, "algorithm": "muzero"}, "train": {"td_steps": 5}},
               {"search": {"num_simulations": 8, "algorithm": "muzero"}, "train": {"td_steps": 5}}]
    assert config_labels(configs) == ["search.num_simulations=4", "search.num_simulations=8"]
    assert config_labels(configs[:1]) == ["config 1"]
    # model-free baselines (`dreamer baseline` configs name an algorithm) by algorithm and
    # library; the agent configs by their differences among themselves
    dqn = {"algorithm": "dqn", "library": "rejax", "hyperparameters": {"batch_size": 32}}
    ppo = {"algorithm": "ppo", "library": "rejax", "hyperparameters": {"num_envs": 64}}
    assert config_labels([*configs, dqn, ppo]) == [
        "search.num_simulations=4", "search.num_simulations=8", "dqn (rejax)", "ppo (rejax)"]
    assert config_labels([configs[0], dqn]) == ["EfficientZero", "dqn (rejax)"]
    sticky = {**dqn, "world_options": {"sticky_action_prob": 0.1}}  # `--set world_options.…`
    assert config_labels([dqn, sticky]) == ["dqn (rejax)", "dqn (rejax), sticky_action_prob=0.1"]


def test_human_normalised_scores_hand_values():
    # Pong: random -20.7, human 14.6; Breakout: random 1.7, human 30.5; Boxing: 0.1, 12.1.
    assert human_normalized_score("atari/pong", 14.6) == pytest.approx(1.0)
    assert human_normalized_score("pong", -20.7) == pytest.approx(0.0)
    assert human_normalized_score("breakout", 16.1) == pytest.approx(0.5)  # 14.4 / 28.8
    assert human_normalized_score("boxing", 36.1) == pytest.approx(3.0)  # 36 / 12
    summary = atari_summary({"atari/pong": [14.6, -20.7],  # HNS 1, 0 -> game mean 0.5
                             "atari/breakout": [16.1],  # 0.5
                             "atari/boxing": [36.1]})  # 3.0
    assert summary["games"] == pytest.approx({"boxing": 3.0, "breakout": 0.5, "pong": 0.5})
    assert summary["mean"] == pytest.approx(4.0 / 3)
    assert summary["median"] == pytest.approx(0.5)
    # IQM pools the 4 runs [0, 0.5, 1, 3]: drops one at each end -> mean(0.5, 1) = 0.75.
    assert summary["iqm"] == pytest.approx(0.75)
    assert summary["runs"] == 4


def test_atari_reference_scores_cover_the_26_games():
    from dreamer.report import atari_reference_scores
    from worlds.atari import ATARI_100K_GAMES

    references = atari_reference_scores()
    assert sorted(references) == sorted(ATARI_100K_GAMES)
    assert all(ref["human"] > ref["random"] for ref in references.values())


def test_report_adds_human_normalised_scores_for_atari_runs(tmp_path):
    _fake_run(tmp_path / "runs" / "pong", 0, [-21.0, -2.0], world="atari/pong")
    _fake_run(tmp_path / "runs" / "breakout", 0, [1.0, 16.1], world="atari/breakout")
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "runs"), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## Atari: human-normalised scores" in text
    assert "| breakout | 1 | 16.1 | 1.7 | 30.5 | 0.500 |" in text
    pong = (-2.0 + 20.7) / 35.3
    assert f"| pong | 1 | -2.0 | -20.7 | 14.6 | {pong:.3f} |" in text
    assert f"mean HNS {(0.5 + pong) / 2:.3f}, median HNS {(0.5 + pong) / 2:.3f}" in text


@pytest.mark.parametrize("setup, message", [
    ("empty", "not a dreamer run folder and holds no runs"),
    ("no-eval", "has no evaluation yet"),
    ("missing", "no such folder"),
    ("not-a-run", "not a dreamer run folder and holds no runs"),
    ("runs-without-eval", "none of its 1 runs has an evaluation yet"),
    ("bad-ledger", "not a dreamer ledger"),
])
def test_report_on_non_runs_gives_one_line(setup, message, tmp_path, capsys):
    target = tmp_path / "x"
    if setup == "empty":
        target.mkdir()
    if setup == "no-eval":
        _fake_run(target, 0, [])
    if setup == "not-a-run":
        (target / "notes").mkdir(parents=True)
        (target / "notes" / "readme.txt").write_text("hello")
    if setup == "runs-without-eval":
        _fake_run(target / "s0", 0, [])
    if setup == "bad-ledger":
        target.mkdir()
        (target / "ledger.json").write_text("{not json")
    assert main(["report", str(target), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and message in err and "\n" not in err


def test_statistics_hand_values():
    assert interquartile_mean(np.array([0.0, 1, 2, 3, 4, 5, 6, 100])) == pytest.approx(3.5)
    assert interquartile_mean(np.array([9.0, -50, 2, 4, 7])) == pytest.approx(13 / 3)  # 2, 4, 7
    # n = 7: floor(7/4) = 1 dropped at each end, unsorted input
    assert interquartile_mean(np.array([6.0, 0, 3, 1, 5, 2, 1000])) == pytest.approx(17 / 5)
    low, high = bootstrap_interval(np.array([1.0, 1.0, 1.0]))
    assert low == high == 1.0
    assert bootstrap_interval(np.array([7.0])) == (7.0, 7.0)


def test_bootstrap_interval_matches_the_exact_bootstrap_distribution():
    """On 5 unequal values the bootstrap distribution of the mean is known exactly: the means of
    all 5^5 = 3,125 equally likely resamples. The interval's ends must be its 2.5% and 97.5%
    quantiles up to Monte-Carlo error: with 2,000 resamples the fraction of resample means below
    an estimated 2.5% point has standard deviation sqrt(0.025 x 0.975 / 2000) = 0.0035, so the
    exact probability below `low` must be 0.025 within 3 sigma (0.0105), likewise above `high`."""
    values = np.array([0.0, 1.0, 3.0, 7.0, 20.0])
    n = len(values)
    index = np.indices((n,) * n).reshape(n, -1)  # every resample, one per column
    means = values[index].mean(axis=0)
    tolerance = 3 * np.sqrt(0.025 * 0.975 / 2000)
    for seed in (0, 1):
        low, high = bootstrap_interval(values, seed=seed)
        assert values.min() < low < values.mean() < high < values.max()
        # `low` lies between atoms of the discrete distribution: below it at most 2.5% (+ MC
        # error), at or below it at least 2.5% (- MC error); the mirror image for `high`
        assert np.mean(means < low) <= 0.025 + tolerance
        assert np.mean(means <= low) >= 0.025 - tolerance
        assert np.mean(means > high) <= 0.025 + tolerance
        assert np.mean(means >= high) >= 0.025 - tolerance
