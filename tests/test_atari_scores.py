"""Atari 100k aggregation in `dreamer report`: the reference scores of the 26 games, human-normalised
mean / median / IQM on synthetic run folders against hand-computed values, and rliable's
stratified-bootstrap intervals."""

import json
import os

import numpy as np
import pytest

from dreamer import report
from dreamer.cli import main
from dreamer.report import (
    atari_reference_scores,
    atari_summary,
    human_normalized_score,
    stratified_bootstrap,
)

GAMES = {  # the 26 Atari 100k games, as the papers' tables name them, and their ALE ROM ids
    "Alien": "alien", "Amidar": "amidar", "Assault": "assault", "Asterix": "asterix",
    "BankHeist": "bank_heist", "BattleZone": "battle_zone", "Boxing": "boxing",
    "Breakout": "breakout", "ChopperCommand": "chopper_command", "CrazyClimber": "crazy_climber",
    "DemonAttack": "demon_attack", "Freeway": "freeway", "Frostbite": "frostbite",
    "Gopher": "gopher", "Hero": "hero", "Jamesbond": "jamesbond", "Kangaroo": "kangaroo",
    "Krull": "krull", "KungFuMaster": "kung_fu_master", "MsPacman": "ms_pacman", "Pong": "pong",
    "PrivateEye": "private_eye", "Qbert": "qbert", "RoadRunner": "road_runner",
    "Seaquest": "seaquest", "UpNDown": "up_n_down",
}

# Human-normalised scores of the synthetic runs, 3 per game, and the raw returns they come from
# (random + HNS x (human - random); Pong -20.7 / 14.6, Boxing 0.1 / 12.1, Breakout 1.7 / 30.5,
# Freeway 0 / 29.6).
HNS = {"pong": [0.0, 0.5, 1.0], "boxing": [2.0, 3.0, 4.0], "breakout": [0.1, 0.2, 0.3],
       "freeway": [0.6, 0.8, 1.0]}
# By hand: per-game means 0.5, 3.0, 0.2, 0.8 -> mean 4.5 / 4 = 1.125, median (0.5 + 0.8) / 2 =
# 0.65. IQM: the 12 run scores sorted are 0, .1, .2, .3, .5, .6, .8, 1, 1, 2, 3, 4; the lowest and
# highest 12 // 4 = 3 are dropped, leaving .3, .5, .6, .8, 1, 1 -> 4.2 / 6 = 0.7.
MEAN, MEDIAN, IQM = 1.125, 0.65, 0.7


def _raw(game: str, hns: float) -> float:
    ref = atari_reference_scores()[game]
    return ref["random"] + hns * (ref["human"] - ref["random"])


def _fake_run(folder, world, seed, final_return):
    """A run folder as `dreamer train` leaves it, as far as `dreamer report` reads it: ledger.json
    (world, seed, config, counts) and eval.csv (one evaluation at the end)."""
    folder.mkdir(parents=True)
    config = {"world": world, "seed": seed, "run": {"real_steps": 100_000}, "search": {}}
    ledger = {"world": world, "seed": seed, "config": config,
              "real": {"env_steps": 100_000, "frames": 400_000, "episodes": 30},
              "simulated": {"search": 10, "reanalyse": 10, "dream": 0, "unroll": 10, "total": 30},
              "dream_ratio": 3e-4, "updates": 1, "wall_seconds": 1.0,
              "eval": {"episodes": 10, "mean_return": final_return, "std_return": 0.0}}
    (folder / "ledger.json").write_text(json.dumps(ledger))
    (folder / "eval.csv").write_text("env_steps,updates,simulated,mean_return,std_return,"
                                     f"episodes\n50000,1,15,0.0,0,10\n100000,1,30,"
                                     f"{final_return!r},0,10\n")


@pytest.fixture
def atari_runs(tmp_path):
    """4 Atari 100k games x 3 seeds, one game outside the 26, and a cartpole run."""
    runs = tmp_path / "runs"
    for game, scores in HNS.items():
        for seed, hns in enumerate(scores):
            _fake_run(runs / f"atari-{game}-agent-s{seed}", f"atari/{game}", seed, _raw(game, hns))
    _fake_run(runs / "atari-space_invaders-agent-s0", "atari/space_invaders", 0, 512.0)
    _fake_run(runs / "cartpole-agent-s0", "cartpole", 0, 200.0)
    return runs


def test_reference_scores_of_the_26_games():
    references = atari_reference_scores()
    assert len(references) == 26
    assert {ref["name"]: game for game, ref in references.items()} == GAMES
    for game, ref in references.items():
        assert ref["random"] < ref["human"], game
    # spot values (DQN's table, as dqn_zoo's atari_data.py lists them)
    assert references["pong"] == {"name": "Pong", "random": -20.7, "human": 14.6}
    assert references["ms_pacman"]["random"] == 307.3 and references["ms_pacman"]["human"] == 6951.6
    assert references["private_eye"]["human"] == 69571.3
    with open(os.path.join(os.path.dirname(report.__file__), "data", "atari_scores.json")) as f:
        assert "dqn_zoo/atari_data.py" in json.load(f)["source"]


def test_every_atari_100k_world_has_reference_scores():
    import worlds
    from worlds.atari import ATARI_100K_GAMES

    references = atari_reference_scores()
    assert sorted(references) == sorted(ATARI_100K_GAMES)
    atari_worlds = [name for name in worlds.names() if name.startswith("atari/")]
    assert len(atari_worlds) == 26
    for name in atari_worlds:
        assert human_normalized_score(name, references[name.removeprefix("atari/")]["human"]) == 1


def test_aggregates_hand_values():
    summary = atari_summary({f"atari/{g}": [_raw(g, h) for h in hs] for g, hs in HNS.items()})
    assert summary["games"] == pytest.approx({"pong": 0.5, "boxing": 3.0, "breakout": 0.2,
                                              "freeway": 0.8})
    assert summary["hns"]["freeway"] == pytest.approx([0.6, 0.8, 1.0])
    assert summary["mean"] == pytest.approx(MEAN)
    assert summary["median"] == pytest.approx(MEDIAN)
    assert summary["iqm"] == pytest.approx(IQM)
    assert summary["runs"] == 12 and summary["unknown"] == {}
    assert len(summary["missing"]) == 22 and "pong" not in summary["missing"]
    for name in ("mean", "median", "iqm"):
        low, high = summary["intervals"][name]
        assert low <= summary[name] <= high, name
        assert low < high, name
    # Reproducible: the same seed gives the same intervals; another seed other ones.
    again = atari_summary({f"atari/{g}": [_raw(g, h) for h in hs] for g, hs in HNS.items()})
    assert again["intervals"] == summary["intervals"]
    other = atari_summary({f"atari/{g}": [_raw(g, h) for h in hs] for g, hs in HNS.items()},
                          seed=1)
    assert other["intervals"] != summary["intervals"]


def test_stratified_bootstrap_matches_its_exact_distribution():
    """Two games of two runs: A with HNS (0, 1), B with (2, 6). A stratified resample redraws
    each game's two runs from that game's own (16 equally likely resamples); no resample mixes the
    games' runs, so every resample has a mean of A in {0, .5, 1} and of B in {2, 4, 6}.
    Mean (= median of 2 games) of the two means: its least value 1 (A 0,0 and B 2,2) has
    probability 1/16 = 6.25% > 2.5%, and so has its largest, 3.5: the 95% interval is [1, 3.5].
    IQM: the middle two of the four runs are max(A) and min(B); (0 + 2) / 2 = 1 has probability
    1/4 x 3/4 = 18.75%, and (1 + 6) / 2 = 3.5 has 3/4 x 1/4: the interval is again [1, 3.5],
    around the point IQM (1 + 2) / 2 = 1.5."""
    intervals = stratified_bootstrap({"a": np.array([0.0, 1.0]), "b": np.array([2.0, 6.0])})
    assert intervals == {"mean": (1.0, 3.5), "median": (1.0, 3.5), "iqm": (1.0, 3.5)}
    # One game: the mean's interval lies within its runs' range, and narrows with more runs.
    one = stratified_bootstrap({"a": np.arange(10.0)})["mean"]
    assert 0 < one[0] < 4.5 < one[1] < 9


def test_report_shows_the_atari_table(atari_runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(atari_runs), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    lines = text.splitlines()
    assert "## Atari: human-normalised scores" in text
    # Each game: runs, mean return, references, mean HNS, the HNS of each run.
    assert "| freeway | 3 | 23.7 | 0 | 29.6 | 0.800 | 0.600, 0.800, 1.000 |" in lines
    assert "| pong | 3 | -3.1 | -20.7 | 14.6 | 0.500 | 0.000, 0.500, 1.000 |" in lines
    assert "Over 4 game(s), 12 run(s): mean HNS 1.125, median HNS 0.650, IQM HNS 0.700." in lines
    summary = atari_summary({f"atari/{g}": [_raw(g, h) for h in hs] for g, hs in HNS.items()})
    for name, title in (("mean", "mean"), ("median", "median"), ("iqm", "IQM")):
        low, high = summary["intervals"][name]
        assert f"| {title} | {summary[name]:.3f} | [{low:.3f}, {high:.3f}] |" in lines
    assert "22 of the 26 Atari 100k games have no run" in text
    # A game outside the 26 is listed, not aggregated; cartpole is not in the Atari section.
    assert ("Not aggregated (not an Atari 100k game, no reference scores): atari/space_invaders "
            "(1 run, final return mean 512.0).") in lines
    atari_part = text.split("## Atari")[1].split("## Runs per config")[0]
    assert "cartpole" not in atari_part and "| space_invaders |" not in atari_part
    # The same folders give the same report (the bootstrap's seed is fixed).
    assert main(["report", str(atari_runs), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.md").read_text() == text


def test_no_atari_table_without_atari_runs(tmp_path):
    _fake_run(tmp_path / "runs" / "cartpole-s0", "cartpole", 0, 200.0)
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r")]) == 0
    assert "Atari" not in (tmp_path / "r" / "report.md").read_text()


def test_configs_are_aggregated_separately(tmp_path):
    """An agent and its planning-free ablation over the same games: one aggregate each."""
    runs = tmp_path / "runs"
    for game, scores in HNS.items():
        for seed, hns in enumerate(scores):
            _fake_run(runs / f"{game}-agent-s{seed}", f"atari/{game}", seed, _raw(game, hns))
            _fake_run(runs / f"{game}-none-s{seed}", f"atari/{game}", seed, _raw(game, 0.0))
    for ledger_path in runs.glob("*-none-*/ledger.json"):
        ledger = json.loads(ledger_path.read_text())
        ledger["config"]["search"] = {"algorithm": "none"}
        ledger_path.write_text(json.dumps(ledger))
    assert main(["report", str(runs), "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "### search.algorithm=none" in text
    assert "Over 4 game(s), 12 run(s): mean HNS 1.125, median HNS 0.650, IQM HNS 0.700." in text
    assert "Over 4 game(s), 12 run(s): mean HNS 0.000, median HNS 0.000, IQM HNS 0.000." in text
