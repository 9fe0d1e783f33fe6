"""`dreamer eval` and `dreamer play --agent` are read-only: they read a run's config, ledger and
parameters, write nothing into the run folder but `eval.json` (eval), and evaluate exactly what the
run's own evaluation at that checkpoint did."""

import json
import os
import re

import pytest
from snapshot import snapshot

from dreamer import agent as agent_lib
from dreamer import cli
from dreamer import config as config_lib
from dreamer.train import Trainer


@pytest.mark.xdist_group("tiny_catch")  # shares compiled programs with the other catch runs
def test_eval_of_a_killed_run_changes_nothing_and_repeats_its_evaluation(tmp_path):
    out = str(tmp_path / "run")
    cfg = config_lib.override(config_lib.tiny(), [
        "world=catch", "run.real_steps=96", "train.learning_starts=32", "run.eval_interval=32",
        "run.checkpoint_interval=64"])
    Trainer(cfg, out).run(progress=False)
    # as if killed after the checkpoint at 96: rows past it that a resume would redo
    rows = open(os.path.join(out, "eval.csv")).read().splitlines()
    assert [r.split(",")[0] for r in rows] == ["env_steps", "32", "64", "96"]
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"env_steps": 128, "loss/total": 1.0}) + "\n")
    with open(os.path.join(out, "eval.csv"), "a") as f:
        f.write("128,96,1,0.5,0.5,10\n")
    before = snapshot(out)

    assert cli.main(["eval", "--run", out, "--episodes", "10"]) == 0
    after = snapshot(out)
    result = json.loads(open(os.path.join(out, "eval.json")).read())
    del after["eval.json"]
    assert after == before  # no file created, changed (even rewritten) or removed
    # the run's own evaluation at 96 real steps: same parameters, key and episodes
    last = rows[-1].split(",")
    assert result["env_steps"] == 96 and result["episodes"] == 10
    assert result["mean_return"] == pytest.approx(float(last[3]), abs=1e-6)  # float32 -> text
    assert result["std_return"] == pytest.approx(float(last[4]), abs=1e-6)


@pytest.mark.xdist_group("tiny_coin")  # watches the run of the text/coin learning test
def test_play_agent_changes_nothing(tiny_coin_run, capsys):
    before = snapshot(tiny_coin_run)
    assert cli.main(["play", "--agent", tiny_coin_run, "--episodes", "1", "--seed", "2"]) == 0
    assert "Agent: 1 episode(s)" in capsys.readouterr().out
    assert snapshot(tiny_coin_run) == before


def test_agent_load_refuses_a_non_run_folder(tmp_path):
    with pytest.raises(agent_lib.NotARunError, match="not a dreamer run folder"):
        agent_lib.read_config(str(tmp_path))
    assert cli.main(["eval", "--run", str(tmp_path)]) == 2
    assert not os.listdir(tmp_path)  # nothing created there either


@pytest.mark.xdist_group("tiny_coin")  # watches the run of the text/coin learning test
def test_eval_video_of_a_text_world_is_a_transcript(tiny_coin_run, tmp_path, capsys):
    """A text world has no picture: `--video x.gif` is one line naming the fix, `--video x.txt`
    writes the episodes as text (beside eval.json, the only other file eval writes)."""
    before = snapshot(tiny_coin_run)
    gif = str(tmp_path / "coin.gif")
    assert cli.main(["eval", "--run", tiny_coin_run, "--video", gif]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"dreamer: error: --video {gif}: text/coin is a text world, with no picture to "
                   f"put in a .gif; record a transcript instead: --video {tmp_path / 'coin.txt'}")
    assert snapshot(tiny_coin_run) == before and not os.listdir(tmp_path)
    txt = tmp_path / "coin.txt"
    assert cli.main(["eval", "--run", tiny_coin_run, "--video", str(txt), "--episodes", "2"]) == 0
    after = snapshot(tiny_coin_run)
    del after["eval.json"]
    assert after == before and os.listdir(tmp_path) == ["coin.txt"]
    text = txt.read_text()
    returns = json.load(open(os.path.join(tiny_coin_run, "eval.json")))["returns"]
    assert text.count("=== Episode") == 2 and "[step 0] You are in the" in text
    for number, score in enumerate(returns, 1):
        assert re.search(rf"\*\*\* Episode {number} (ended|ran out of steps) after \d+ steps: "
                         rf"score {score:g} \*\*\*", text), text
