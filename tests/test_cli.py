"""The command line: fast help, and one clear line (exit 2, no traceback) for each bad input."""

import json
import os
import subprocess
import sys

import pytest

from dreamer.cli import main


def test_help_is_fast_and_imports_no_jax():
    code = "import sys; from dreamer import cli; cli._parser(); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    subprocess.run([sys.executable, "-m", "dreamer.cli", "--help"], check=True,
                   capture_output=True)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--world", "minatar/brekout"], "did you mean: minatar/breakout"),
        (["train", "--preset", "tinny"], "unknown preset 'tinny'"),
        (["train", "--set", "search.num_simulation=8"], "did you mean search.num_simulations"),
        (["train", "--set", "search.num_simulations=many"], "expected int"),
        (["train", "--set", "search.algorithm=alphazero"], "must be one of muzero, gumbel"),
        (["train", "--set", "nonsense"], "expected key=value"),
        (["train", "--real-steps", "0"], "run.real_steps must be > 0"),
        (["train", "--real-steps", "-5"], "run.real_steps must be > 0"),
        (["train", "--set", "search.num_simulations=0"], "search.num_simulations must be > 0"),
        (["train", "--set", "train.batch_size=-1"], "train.batch_size must be > 0"),
        (["train", "--world", "gym:Pendulum-v1"], "box action space"),
        (["train", "--resume"], "--resume needs --out"),
    ],
)
def test_bad_input_gives_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and "\n" not in err
    assert message.lower() in err.lower()


def test_resume_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert "not a dreamer run folder" in capsys.readouterr().err


def test_out_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--out", str(blocker / "run")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_eval_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert "not a dreamer run folder" in capsys.readouterr().err


def test_train_then_eval_through_the_cli(tmp_path, capsys):
    out = str(tmp_path / "run")
    code = main(["train", "--world", "catch", "--preset", "tiny", "--real-steps", "96",
                 "--out", out, "--no-progress", "--set", "run.eval_episodes=4",
                 "--set", "train.learning_starts=64"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["real"]["env_steps"] == 96 and summary["updates"] > 0
    for name in ["ledger.json", "metrics.jsonl", "eval.csv", "config.json", "checkpoints"]:
        assert os.path.exists(os.path.join(out, name)), name
    assert main(["eval", "--run", out, "--episodes", "4"]) == 0
    result = json.load(open(os.path.join(out, "eval.json")))
    assert result["episodes"] == 4 and result["env_steps"] == 96
