"""`dreamer sweep`: a tiny grid end to end (runs, reuse, report) and its input errors."""

import json
import os

import jax
import pytest

from dreamer.cli import main

# The varied key is host-side only (when learning starts), so every run compiles the same programs
# as the tiny catch runs of test_cli and test_agent: with the session's compilation cache shared
# with the subprocesses, the sweep mostly loads compiled programs.
SWEEP = ["sweep", "--world", "catch", "--preset", "tiny", "--real-steps", "128", "--seeds", "1",
         "--vary", "train.learning_starts=64,96", "--set", "run.eval_episodes=4", "--set", "train.learning_starts=64",
         "--jobs", "2"]


@pytest.fixture
def shared_cache(monkeypatch):
    monkeypatch.setenv("DREAMER_CACHE", jax.config.jax_compilation_cache_dir)


@pytest.mark.xdist_group("tiny_catch")  # the tiny catch programs, compiled once
def test_tiny_sweep_end_to_end(tmp_path, shared_cache, capsys):
    out = tmp_path / "sweep"
    assert main([*SWEEP, "--out", str(out)]) == 0
    names = ["train.learning_starts=64-s0", "train.learning_starts=96-s0", "search.algorithm=none-s0"]
    ledgers = {name: json.loads((out / name / "ledger.json").read_text()) for name in names}
    for name, ledger in ledgers.items():
        assert ledger["real"]["env_steps"] == 128, name
    # 128 real steps = 4 collections of 32; 32 updates after each collection that ends at or past
    # learning_starts: 3 x 32 (starts at 64) and 2 x 32 (starts at 96).
    assert ledgers[names[0]]["updates"] == 96 and ledgers[names[1]]["updates"] == 64
    ablation = ledgers["search.algorithm=none-s0"]
    assert ablation["config"]["search"]["algorithm"] == "none"
    assert ablation["simulated"]["search"] == ablation["simulated"]["reanalyse"] == 0
    # the planning-free ablation: its simulated steps are the training unroll alone (updates x
    # batch 32 x K=3), and the policy head it acts with is evaluated like any agent
    assert ablation["updates"] == 96
    assert ablation["simulated"]["total"] == ablation["simulated"]["unroll"] == 96 * 32 * 3
    assert ablation["dream_ratio"] == pytest.approx(96 * 32 * 3 / 128)
    assert ablation["eval"]["episodes"] == 4 and -1 <= ablation["eval"]["mean_return"] <= 1

    table = (out / "report" / "sweep.md").read_text()
    assert "| train.learning_starts=64 | 1 |" in table
    assert "| search.algorithm=none (ablation) | 1 | 72 | 0 / 0 / 72 |" in table
    assert (out / "report" / "dream_ratio.png").stat().st_size > 10_000
    assert (out / "report" / "catch.png").is_file()  # curves from `dreamer report`

    # A second call reuses the finished runs: nothing is trained again.
    capsys.readouterr()
    assert main([*SWEEP, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 runs, 3 already done" in printed and "  start  " not in printed

    # The same folder with another shared config is refused before anything runs.
    assert main([*SWEEP, "--out", str(out), "--set", "train.td_steps=2"]) == 2
    assert "holds a run of another config (train.td_steps differ)" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--vary", "search.num_simulation=2,4"], "--vary search.num_simulation: unknown config key. "
     "Did you mean search.num_simulations"),
    (["--vary", "search.num_simulations=2,many"], "expected int, got 'many'"),
    (["--vary", "search.num_simulations=2,0"], "search.num_simulations must be > 0, got 0"),
    (["--vary", "search.algorithm=muzero,alphazero"], "must be one of muzero, gumbel, none"),
    (["--vary", "search.num_simulations"], "expected key=v1,v2"),
    (["--vary", "search.num_simulations=2,,4"], "no empty value"),
    (["--vary", "search.num_simulations=2,2"], "a value is repeated"),
    (["--vary", "seed=0,1"], "the sweep sets it"),
    (["--vary", "run.real_steps=100,200"], "holds the real budget fixed"),
    (["--vary", "search.num_simulations=2", "--set", "train.batch_size=0"],
     "train.batch_size must be > 0"),
    (["--vary", "search.num_simulations=2", "--world", "cartpol"], "did you mean: cartpole"),
    (["--vary", "search.num_simulations=2", "--preset", "tinny"], "unknown preset 'tinny'"),
    (["--vary", "search.num_simulations=2", "--seeds", "0"], "--seeds must be > 0"),
    (["--no-ablation"], "nothing to sweep"),
    # every varied world option is built once before any run: rooms=1 is refused
    (["--world", "text/coin", "--vary", "world_options.rooms=3,1"],
     "rooms must be in [2, 20], got 1"),
])
def test_bad_inputs_fail_before_any_run(extra, message, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--real-steps", "100", "--out", str(out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and "\n" not in err
    assert message.lower() in err.lower()
    assert not out.exists()


def test_dry_run_lists_the_grid_and_ablation(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--world", "catch", "--real-steps", "100", "--out", str(out), "--seeds", "2",
            "--vary", "search.num_simulations=2,4", "--vary", "train.td_steps=3,5", "--dry-run"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == (2 * 2 + 1) * 2
    assert lines[0] == f"{os.path.join(str(out), 'search.num_simulations=2,train.td_steps=3-s0')}  [new]"
    # Seed-major: every cell at seed 0 before any at seed 1.
    assert lines[1].endswith("search.num_simulations=2,train.td_steps=5-s0  [new]")
    assert lines[4].endswith("search.algorithm=none-s0  [new]")
    assert lines[-1].startswith(os.path.join(str(out), "search.algorithm=none-s1"))
    assert not out.exists()


def _planned(tmp_path, *extra):
    from dreamer import sweep
    from dreamer.cli import _parser

    args = _parser().parse_args(["sweep", "--world", "catch", "--preset", "tiny", "--real-steps",
                                 "128", "--seeds", "1", "--no-ablation", "--out",
                                 str(tmp_path / "sweep"), "--vary", "search.num_simulations=4",
                                 *extra])
    return sweep.plan(args)[0]


def _write_run(run, env_steps, eval_rows, config=None):
    os.makedirs(os.path.join(run.folder, "checkpoints"), exist_ok=True)
    ledger = {"world": "catch", "seed": 0, "config": config or run.config,
              "real": {"env_steps": env_steps}}
    with open(os.path.join(run.folder, "ledger.json"), "w") as f:
        json.dump(ledger, f)
    with open(os.path.join(run.folder, "eval.csv"), "w") as f:
        f.write("env_steps,updates,simulated,mean_return,std_return,episodes\n")
        f.writelines(f"{step},1,1,0.0,0.0,4\n" for step in eval_rows)


def test_run_state_reuses_finished_runs_and_resumes_the_rest(tmp_path):
    from dreamer.cli import UserError
    from dreamer.sweep import run_state

    run = _planned(tmp_path)
    assert run_state(run) == "new"
    _write_run(run, 64, [64])
    assert run_state(run) == "resume"  # short of the budget
    _write_run(run, 128, [64])
    assert run_state(run) == "resume"  # stopped before its final evaluation
    _write_run(run, 128, [64, 128])
    assert run_state(run) == "done"
    other = json.loads(json.dumps(run.config))
    other["train"]["td_steps"] = 1
    _write_run(run, 128, [64, 128], config=other)
    with pytest.raises(UserError, match=r"another config \(train.td_steps differ\)"):
        run_state(run)
    longer = json.loads(json.dumps(run.config))
    longer["run"]["real_steps"] = 256
    _write_run(run, 256, [128, 256], config=longer)
    with pytest.raises(UserError, match="holds a run of 256 real steps, longer than"):
        run_state(run)
    # A config field the saved run predates matches when the sweep keeps its default.
    older = json.loads(json.dumps(run.config))
    del older["train"]["nan_policy"]
    _write_run(run, 128, [128], config=older)
    assert run_state(run) == "done"
