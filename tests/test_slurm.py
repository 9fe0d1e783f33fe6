"""`dreamer sweep --slurm FILE`: the job-array script's content, its quoting, its per-task logic
(fresh start, resume, finished) run against a stand-in `dreamer`, and that it writes nothing else."""

import json
import os
import re
import shlex
import stat
import subprocess

import pytest

from dreamer.cli import main

ODD = "my runs/it's $HOME"
"""An output folder with a space, a quote and a dollar sign: each must reach `dreamer train` as
written."""


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, name), root)
            for d, dirs, names in os.walk(root) for name in names + dirs}


def _tasks(text: str) -> dict[int, list[str]]:
    """{array index: the words of its `run_task` line} from the script's case arms."""
    tasks = {}
    for line in text.splitlines():
        match = re.fullmatch(r"  (\d+)\) (run_task .*) ;;", line)
        if match:
            tasks[int(match.group(1))] = shlex.split(match.group(2))
    return tasks


def _emit(tmp_path, *extra, worlds="catch,cartpole"):
    script = tmp_path / "sweep.sbatch"
    out = tmp_path / ODD
    argv = ["sweep", "--world", worlds, "--real-steps", "1000", "--seeds", "2", "--no-ablation",
            "--out", str(out), "--set", "run.eval_episodes=4", "--slurm", str(script), *extra]
    return argv, script, out


def test_script_for_two_worlds_and_two_seeds(tmp_path, capsys):
    argv, script, out = _emit(tmp_path, "--slurm-option=--gres=gpu:1", "--slurm-option", "mem=16G",
                              "--slurm-time", "4:00:00", "--slurm-partition", "gpu",
                              "--slurm-max-running", "3", "--slurm-setup",
                              "source ~/venv/bin/activate")
    before = _files(tmp_path)
    assert main(argv) == 0
    # Only the script was written: no run folder, no results folder.
    assert _files(tmp_path) == before | {"sweep.sbatch"}
    assert not out.exists()
    printed = capsys.readouterr().out
    assert "a job array of 4 tasks (4 new)" in printed and "sbatch" in printed

    text = script.read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [line for line in lines if line.startswith("#SBATCH")]
    assert directives == ["#SBATCH --job-name=dreamer-sweep", "#SBATCH --array=0-3%3",
                          "#SBATCH --time=4:00:00", "#SBATCH --partition=gpu",
                          "#SBATCH --gres=gpu:1", "#SBATCH --mem=16G"]
    assert "source ~/venv/bin/activate" in lines
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0

    tasks = _tasks(text)
    assert sorted(tasks) == [0, 1, 2, 3]
    # Seed-major: both worlds at seed 0, then at seed 1. One task per (world, seed), each the
    # plain train command of its run, into the folder `dreamer report OUT` reads.
    expected = [("catch", 0), ("cartpole", 0), ("catch", 1), ("cartpole", 1)]
    for index, (world, seed) in enumerate(expected):
        folder = os.path.join(str(out), f"{world}-agent-s{seed}")
        words = tasks[index]
        assert words[:4] == ["run_task", folder, "1000", "1"]
        assert words[4:] == ["dreamer", "train", "--world", world, "--seed", str(seed),
                             "--real-steps", "1000", "--out", folder, "--no-progress",
                             "--set", "run.eval_episodes=4"]
        # The odd folder is single-quoted on the line: not split, and $HOME not expanded.
        line = next(line for line in lines if line.startswith(f"  {index}) "))
        assert f"--out {shlex.quote(folder)} " in line and "'\"'\"'" in line


def test_task_commands_are_the_local_sweeps(tmp_path):
    """The array's commands are those the local sweep starts (same arguments, same folders)."""
    from dreamer import sweep
    from dreamer.cli import _parser

    argv, script, out = _emit(tmp_path, "--vary", "search.num_simulations=2,4",
                              worlds="catch")
    argv = [a for a in argv if a != "--no-ablation"]
    assert main(argv) == 0
    args = _parser().parse_args([a for a in argv if a not in ("--slurm", str(script))])
    args.out = os.path.abspath(args.out)
    runs = sweep.plan(args)
    tasks = _tasks(script.read_text())
    assert len(tasks) == len(runs) == 2 * 3  # 2 cells + the ablation, 2 seeds
    for index, run in enumerate(runs):
        assert tasks[index][1] == run.folder
        assert tasks[index][4:] == ["dreamer", *sweep.train_command(run, args, resume=False)[3:]]
    # one world: the local sweep's folder names
    assert [os.path.basename(tasks[i][1]) for i in range(3)] == [
        "search.num_simulations=2-s0", "search.num_simulations=4-s0", "search.algorithm=none-s0"]


def _stand_in(tmp_path):
    """A `dreamer` on PATH that records its arguments (one per line) and exits 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "called.txt"
    stub = bin_dir / "dreamer"
    stub.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" > {shlex.quote(str(record))}\n"
                    "echo trained\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return bin_dir, record


def _run_task(script, index, bin_dir):
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "SLURM_ARRAY_TASK_ID": str(index)}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)


def test_each_task_starts_resumes_or_skips_its_run(tmp_path):
    argv, script, out = _emit(tmp_path)
    assert main(argv) == 0
    bin_dir, record = _stand_in(tmp_path)
    folder = out / "catch-agent-s0"

    # A fresh task: the plain command, output appended to the run's train.log.
    result = _run_task(script, 0, bin_dir)
    assert result.returncode == 0, result.stderr
    called = record.read_text().splitlines()
    assert called[:2] == ["train", "--world"] and "--resume" not in called
    assert called[called.index("--out") + 1] == str(folder)
    assert "trained" in (folder / "train.log").read_text()

    # Killed before its first checkpoint: the leftovers are cleared and it starts again.
    (folder / "checkpoints" / "500.orbax-checkpoint-tmp-1").mkdir(parents=True)
    (folder / "eval.csv").write_text("env_steps,updates,simulated,mean_return\n250,1,1,0.0\n")
    assert _run_task(script, 0, bin_dir).returncode == 0
    assert "--resume" not in record.read_text().splitlines()
    assert not (folder / "eval.csv").exists() and not (folder / "checkpoints").exists()

    # A requeued task whose run checkpointed: it resumes.
    (folder / "checkpoints" / "500").mkdir(parents=True)
    assert _run_task(script, 0, bin_dir).returncode == 0
    assert record.read_text().splitlines()[-1] == "--resume"

    # Checkpointed at the budget but its final evaluation is missing: resumed (it evaluates).
    (folder / "checkpoints" / "1000").mkdir()
    (folder / "eval.csv").write_text("env_steps,updates,simulated,mean_return\n500,1,1,0.0\n")
    assert _run_task(script, 0, bin_dir).returncode == 0
    assert record.read_text().splitlines()[-1] == "--resume"

    # Finished at the budget: the task exits at once, nothing is run.
    (folder / "eval.csv").write_text("env_steps,updates,simulated,mean_return\n500,1,1,0.0\n"
                                     "1000,2,2,1.0\n")
    record.unlink()
    result = _run_task(script, 0, bin_dir)
    assert result.returncode == 0 and "is finished at 1000 real steps" in result.stdout
    assert not record.exists()

    # An index outside the array, and the script run outside Slurm, fail with a message.
    result = _run_task(script, 9, bin_dir)
    assert result.returncode == 2 and "no run for array task 9 (0-3)" in result.stderr
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "submit this script with sbatch" in result.stderr


def test_print_the_script_and_the_atari_100k_shorthand(tmp_path, capsys):
    out = tmp_path / "atari"
    argv = ["sweep", "--world", "atari100k", "--real-steps", "100000", "--seeds", "3",
            "--no-ablation", "--out", str(out), "--slurm", "-"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "#SBATCH --array=0-77\n" in text  # 26 games x 3 seeds
    tasks = _tasks(text)
    assert len(tasks) == 78
    assert tasks[0][1] == os.path.join(str(out), "atari-alien-agent-s0")
    assert tasks[77][1] == os.path.join(str(out), "atari-up_n_down-agent-s2")
    assert tasks[20][5:9] == ["train", "--world", "atari/pong", "--seed"]
    assert not out.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize("extra, message", [
    (["--slurm-option=--array=0-9"], "the sweep sets the array"),
    (["--slurm-option", "gres=gpu:1 --mem=1G"], "one Slurm option with no spaces"),
    (["--slurm-max-running", "0"], "--slurm-max-running must be > 0"),
    (["--slurm-setup", "module load cuda\nrm -rf /"], "one shell line per --slurm-setup"),
    (["--dry-run"], "--slurm runs nothing already"),
    (["--world", "catch,catch"], "catch given twice"),
])
def test_bad_slurm_inputs_write_nothing(extra, message, tmp_path, capsys):
    argv, script, out = _emit(tmp_path)
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamer: error:") and "\n" not in err and message in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("extra, message", [
    (["--slurm-time", "1:00:00"], "--slurm-time: only with --slurm FILE"),
    (["--world", "catch,cartpole", "--vary", "search.num_simulations=2"],
     "a sweep of several worlds runs on a cluster"),
])
def test_local_sweep_refuses_slurm_only_inputs(extra, message, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--world", "catch", "--real-steps", "100", "--out", str(out), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_a_dreamed_run_is_finished_by_its_real_steps(tmp_path):
    """`dreamer dream` keys a checkpoint by real steps + dreamed updates: a run dreamed on short
    of the budget is resumed, not taken as finished, because its ledger holds the real steps
    (here without evaluation, where the checkpoint alone says whether a run is finished)."""
    argv, script, out = _emit(tmp_path, "--set", "run.eval_episodes=0")  # off: the checkpoint alone decides (docstring)
    assert main(argv) == 0
    bin_dir, record = _stand_in(tmp_path)
    folder = out / "catch-agent-s0"
    (folder / "checkpoints" / "1100").mkdir(parents=True)  # 900 real steps + 200 dreamed updates
    ledger = {"real": {"env_steps": 900, "frames": 900, "episodes": 1}, "dream_updates": 200}
    (folder / "ledger.json").write_text(json.dumps(ledger, indent=2))
    assert _run_task(script, 0, bin_dir).returncode == 0
    assert record.read_text().splitlines()[-1] == "--resume"
    # at the budget: finished, whatever dreaming added to its checkpoint step
    (folder / "checkpoints" / "1200").mkdir()
    ledger["real"]["env_steps"] = 1000
    (folder / "ledger.json").write_text(json.dumps(ledger, indent=2))
    record.unlink()
    result = _run_task(script, 0, bin_dir)
    assert result.returncode == 0 and "is finished at 1000 real steps" in result.stdout
    assert not record.exists()
