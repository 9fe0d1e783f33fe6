"""`dreamer sweep`: a tiny grid end to end (runs, an interrupt and its resume, reuse, report) and its
input errors."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from dreamer.cli import main

# The varied key is host-side only (when learning starts), so every run compiles the same programs
# as the tiny catch runs of test_cli and test_agent: with the session's compilation cache shared
# with the subprocesses, the sweep mostly loads compiled programs. One run at a time, with a
# checkpoint every collection (32 real steps), so an interrupt can land mid-run after a checkpoint.
SWEEP = ["sweep", "--world", "catch", "--preset", "tiny", "--real-steps", "128", "--seeds", "1",
         "--vary", "train.learning_starts=64,96", "--set", "run.eval_episodes=4", "--set", "train.learning_starts=64",
         "--set", "run.checkpoint_interval=32", "--jobs", "1"]


@pytest.fixture
def shared_cache(monkeypatch):
    monkeypatch.setenv("DREAMER_CACHE", jax.config.jax_compilation_cache_dir)


def _checkpoint_steps(folder):
    path = os.path.join(folder, "checkpoints")
    return sorted(int(d) for d in os.listdir(path) if d.isdigit()) if os.path.isdir(path) else []


# no xdist group: the runs are `dreamer train` subprocesses, which share the tiny catch programs
# with the session through the persistent compilation cache alone
def test_tiny_sweep_end_to_end_interrupted_and_resumed(tmp_path, shared_cache, capsys):
    """A tiny grid and its planning-free ablation end to end (runs, report, reuse), interrupted:
    Ctrl-C in the middle of the second of the three runs, then the same command again: the
    finished run is reused as it is, the stopped one (a checkpoint short of the budget: run_state
    "resume") continues with --resume to the counts of an uninterrupted run, and the ablation
    runs. A third call trains nothing. (One sweep for both, the end-to-end and the interrupted
    one, saves training the grid twice.)"""
    from dreamer import sweep
    from dreamer.cli import _parser

    out = tmp_path / "sweep"
    argv = [*SWEEP, "--out", str(out)]
    names = ["train.learning_starts=64-s0", "train.learning_starts=96-s0", "search.algorithm=none-s0"]
    first, second = out / names[0], out / names[1]
    # the `dreamer` script, in a session of its own: a Ctrl-C reaches it and its runs alone
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from dreamer.cli import main; sys.exit(main())", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 900
    while proc.poll() is None and time.time() < deadline and not _checkpoint_steps(second):
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before the interrupt: " + proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)
    printed, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "dreamer sweep: stopped; run the same command again to resume the sweep")
    # The sweep says the running run was stopped: as it catches the SIGINT itself ("waiting for
    # the running runs"), or, where the run checkpoints and exits before the sweep runs again (a
    # loaded machine), from the run's exit status 130. Both reach the same state below.
    assert ("interrupted; waiting for the running runs to checkpoint" in printed
            or f"stopped {names[1]} (checkpoint written)" in printed), printed
    stopped_at = json.loads((second / "ledger.json").read_text())["real"]["env_steps"]
    assert 32 <= stopped_at < 128 and _checkpoint_steps(second)[-1] == stopped_at
    assert [sweep.run_state(run) for run in sweep.plan(_parser().parse_args(argv))] == [
        "done", "resume", "new"]
    first_files = {name: (first / name).read_bytes()
                   for name in ("train.log", "ledger.json", "eval.csv", "metrics.jsonl")}

    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "3 runs, 1 already done, 1 at a time" in printed
    assert "  start  train.learning_starts=96-s0 (resume)\n" in printed
    assert "  start  search.algorithm=none-s0\n" in printed
    assert "start  train.learning_starts=64-s0" not in printed
    assert {name: (first / name).read_bytes() for name in first_files} == first_files
    assert (second / "train.log").read_text().count("dreamer: training catch") == 2
    ledgers = {name: json.loads((out / name / "ledger.json").read_text()) for name in names}
    for name, ledger in ledgers.items():
        assert ledger["real"]["env_steps"] == 128, name
    # 128 real steps = 4 collections of 32; 32 updates after each collection that ends at or past
    # learning_starts: 3 x 32 (starts at 64) and 2 x 32 (starts at 96), the resumed run included
    assert ledgers[names[0]]["updates"] == 96 and ledgers[names[1]]["updates"] == 64
    # one evaluation at the end of the resumed run: nothing repeated on resume
    rows = (second / "eval.csv").read_text().splitlines()[1:]
    assert [row.split(",")[:2] for row in rows] == [["128", "64"]]
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
    assert "| train.learning_starts=96 | 1 |" in table
    assert "| search.algorithm=none (ablation) | 1 | 72 | 0 / 0 / 72 |" in table
    assert (out / "report" / "dream_ratio.png").stat().st_size > 10_000
    assert (out / "report" / "catch.png").is_file()  # curves from `dreamer report`

    # A third call reuses the finished runs: nothing is trained again.
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "3 runs, 3 already done" in printed and "  start  " not in printed

    # The same folder with another shared config is refused before anything runs.
    assert main([*argv, "--set", "train.td_steps=2"]) == 2
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


# The tiny catch runs of SWEEP without its grid: the tests below vary host-side keys only.
BASE = ["sweep", "--world", "catch", "--preset", "tiny", "--real-steps", "128", "--seeds", "1",
        "--set", "run.eval_episodes=4", "--set", "train.learning_starts=64", "--no-ablation"]


# subprocesses: no xdist group, as above
def test_a_failed_run_is_named_and_the_others_finish(tmp_path, shared_cache, capsys):
    """run.devices=1024 passes the sweep's checks (a valid config) and fails in its own `dreamer
    train` (no machine here has 1,024 devices); on one device run.devices=1 is the tiny catch
    programs again."""
    out = tmp_path / "sweep"
    assert main([*BASE, "--vary", "run.devices=1,1024", "--jobs", "2", "--out", str(out)]) == 1
    printed = capsys.readouterr()
    failed = out / "run.devices=1024-s0"
    assert f"] FAILED run.devices=1024-s0 (exit 2; see {failed / 'train.log'})" in printed.out
    assert "] done   run.devices=1-s0 (" in printed.out
    assert printed.err.strip().splitlines()[-1] == (
        "dreamer sweep: 1 run(s) failed: run.devices=1024-s0")
    log = (failed / "train.log").read_text()
    assert "dreamer: error: run.devices=1024, but only" in log and "Traceback" not in log
    assert not (failed / "ledger.json").exists()
    # the other run finished, and the report covers it alone
    ledger = json.loads((out / "run.devices=1-s0" / "ledger.json").read_text())
    assert (ledger["real"]["env_steps"], ledger["updates"]) == (128, 96)
    table = (out / "report" / "sweep.md").read_text()
    assert "| run.devices=1 | 1 |" in table and "1024" not in table
    assert f"report written to {out / 'report' / 'sweep.md'}" in printed.out


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path):
    """The trainer makes checkpoints/ at once, so a run killed before its first checkpoint
    leaves one holding only orbax's unfinished step folder: that run is new (a --resume of it
    would fail on every rerun), and clearing it removes that folder and the rows."""
    from dreamer.sweep import _clear_partial, run_state

    run = _planned(tmp_path)
    os.makedirs(os.path.join(run.folder, "checkpoints", "32.orbax-checkpoint-tmp-1"))
    with open(os.path.join(run.folder, "metrics.jsonl"), "w") as f:
        f.write('{"env_steps": 32}\n')
    assert run_state(run) == "new"
    _clear_partial(run.folder)
    assert sorted(os.listdir(run.folder)) == []
    os.makedirs(os.path.join(run.folder, "checkpoints", "32"))  # a finished step: resume it
    assert run_state(run) == "resume"
    _clear_partial(run.folder)
    assert os.listdir(run.folder) == ["checkpoints"]  # a finished checkpoint is never removed


def test_cpu_groups_split_the_allowed_cpus_between_concurrent_runs():
    from dreamer.sweep import cpu_groups

    assert cpu_groups({0, 1}, 2) == [[0], [1]]
    assert cpu_groups([5, 1, 3, 2, 4], 2) == [[1, 2, 3], [4, 5]]  # near-equal, disjoint, sorted
    assert cpu_groups(range(8), 3) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert cpu_groups({0, 1}, 1) is None  # one run: it keeps every CPU (XLA's threads use them)
    assert cpu_groups({0}, 2) is None  # fewer CPUs than runs: nothing to split


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs a Linux CPU mask of 2 or more CPUs")
def test_concurrent_runs_are_started_on_their_own_cpus(tmp_path, monkeypatch, capsys):
    """`--jobs 2`: each concurrent run's process gets its own group of the sweep's CPUs (its
    train.log shows the mask it ran with), groups are handed back as runs end, and the sweep's
    own mask is unchanged afterwards."""
    from dreamer import sweep
    from dreamer.cli import _parser

    allowed = os.sched_getaffinity(0)
    args = _parser().parse_args(["sweep", "--world", "catch", "--preset", "tiny", "--real-steps",
                                 "128", "--seeds", "3", "--no-ablation", "--vary", "search.num_simulations=4",
                                 "--jobs", "2", "--out",
                                 str(tmp_path / "sweep")])
    runs = sweep.plan(args)
    assert len(runs) == 3
    report = "import os; print(sorted(os.sched_getaffinity(0)))"
    monkeypatch.setattr(sweep, "train_command",
                        lambda run, args, resume: [sys.executable, "-c", report])
    assert sweep.execute(runs, args) == []
    groups = sweep.cpu_groups(allowed, 2)
    masks = [json.loads(open(os.path.join(run.folder, "train.log")).read()) for run in runs]
    assert masks[:2] == groups  # the first two runs start together, one group each
    assert masks[2] in groups  # the third gets the group of the run that ended first
    assert os.sched_getaffinity(0) == allowed
    assert "2 at a time, each on its own CPUs (" in capsys.readouterr().out
