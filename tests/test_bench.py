"""`dreamer bench` runs at a quick size, so the benchmark commands cannot rot: each prints its table
and then one JSON line with every expected case (a missing world or case fails), and the derived
figures agree with the measured ones."""

import json
import math

import pytest

from dreamer import bench
from dreamer import config as config_lib

HEADER = {"bench", "quick", "device", "device_kind"}


def _run(what: str, capsys) -> tuple[dict, list[str]]:
    """Runs `dreamer bench WHAT --quick`; returns its JSON result and the table lines above it."""
    assert bench.main(what, quick=True) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["bench"] == what and result["quick"] is True
    return result, lines[:-1]


def _rate(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_bench_worlds_quick(capsys):
    result, table = _run("worlds", capsys)
    assert set(result) == HEADER | {"jax_worlds_steps_per_s", "step_batch_vs_vmap_step",
                                    "host_worlds_steps_per_s"}
    jax_worlds = ["catch", "cartpole", "text/coin"]  # the quick list; B=16 only
    assert list(result["jax_worlds_steps_per_s"]) == jax_worlds
    assert list(result["step_batch_vs_vmap_step"]) == jax_worlds
    for name in jax_worlds:
        assert list(result["jax_worlds_steps_per_s"][name]) == ["16"]
        assert _rate(result["jax_worlds_steps_per_s"][name]["16"])
        assert _rate(result["step_batch_vs_vmap_step"][name])
    # the host worlds of the quick run, one copy each; a world whose extra is missing would be
    # printed as skipped and left out of the JSON
    hosts = ["atari/pong x1", "gym:CartPole-v1 x1"]
    assert list(result["host_worlds_steps_per_s"]) == hosts
    assert all(_rate(result["host_worlds_steps_per_s"][h]) for h in hosts)
    assert not any("skipped" in line for line in table)
    for name in jax_worlds:
        assert sum(line.split()[0] == name for line in table) == 1
    for name in hosts:
        assert sum(line.startswith(name) and "(host vector env)" in line for line in table) == 1


def test_bench_search_quick(capsys):
    result, table = _run("search", capsys)
    assert set(result) == HEADER | {"network", "search", "cases"}
    assert result["network"] == "minatar preset on minatar/breakout"
    assert result["search"] == "muzero"
    (case,) = result["cases"]  # the quick size: one case, B=16 x 16 simulations
    assert set(case) == {"batch", "simulations", "ours_sims_per_s", "raw_mctx_sims_per_s",
                         "throughput_ratio_vs_raw_mctx"}
    assert (case["batch"], case["simulations"]) == (16, 16)
    assert _rate(case["ours_sims_per_s"]) and _rate(case["raw_mctx_sims_per_s"])
    # the ratio is the quotient of the two printed rates (both JSON floats round-trip exactly)
    assert case["throughput_ratio_vs_raw_mctx"] == pytest.approx(
        case["ours_sims_per_s"] / case["raw_mctx_sims_per_s"], rel=1e-12)
    assert table[-1].split()[:2] == ["16", "16"]


def test_bench_train_quick(capsys):
    result, table = _run("train", capsys)
    # quick: the `small` preset on cartpole only, and the fresh-target comparison at batch 16
    assert set(result) == HEADER | {"cases", "fresh_targets"}
    (name,) = result["cases"]
    small = result["cases"]["small"]
    assert set(small) == {"world", "batch_size", "fresh_share", "fresh_from", "updates_per_s",
                          "sampled_positions_per_s", "model_steps_per_update",
                          "model_steps_per_s", "limit_model_steps_per_s", "limit_batch",
                          "efficiency", "compile_s", "peak_bytes", "updates_per_call"}
    assert small["world"] == "cartpole" and small["batch_size"] == 16  # the quick override
    # the `small` preset reanalyses 99%: round(0.99 x 16) = 16 of 16
    assert small["fresh_share"] == 1.0 and small["fresh_from"] == "update"
    # the ledger's count per update: 16 x K=5 unrolled steps + 16 x 6 roots x 16 simulations
    assert small["model_steps_per_update"] == 16 * 5 + 16 * 6 * 16
    # XLA's peak holds at least the batch's observations (16 x (K + 1) x 4 floats)
    assert isinstance(small["peak_bytes"], int) and small["peak_bytes"] > 16 * 6 * 4 * 4
    assert small["updates_per_call"] == 2
    for key in ("updates_per_s", "compile_s", "limit_model_steps_per_s"):
        assert _rate(small[key]), key
    assert small["limit_batch"] in (64, 256)  # the quick sizes
    # the derived figures are the printed rates recombined (JSON floats round-trip exactly)
    assert small["sampled_positions_per_s"] == pytest.approx(16 * small["updates_per_s"],
                                                             rel=1e-12)
    assert small["model_steps_per_s"] == pytest.approx(
        small["updates_per_s"] * small["model_steps_per_update"], rel=1e-12)
    assert small["efficiency"] == pytest.approx(
        small["model_steps_per_s"] / small["limit_model_steps_per_s"], rel=1e-12)
    assert table[-2].split()[:2] == ["small", "cartpole"]
    fresh = result["fresh_targets"]
    assert set(fresh) == {"world", "batch_size", "fresh_share",
                          "per_update_reanalysis_updates_per_s", "no_reanalysis_updates_per_s",
                          "pass_roots_per_s", "pass_updates_per_s", "pass_vs_per_update",
                          "sampled_positions_per_s"}
    assert (fresh["world"], fresh["batch_size"], fresh["fresh_share"]) == (
        "minatar/breakout", 16, 0.99)
    for key in ("per_update_reanalysis_updates_per_s", "no_reanalysis_updates_per_s",
                "pass_roots_per_s", "pass_updates_per_s"):
        assert _rate(fresh[key]), key
    # the pass path: the learner without reanalysis plus one pass search per fresh position
    # (round(0.99 x 16) = 16 samples x (K + 1) = 6 positions), the same floats recombined
    expected = 1 / (1 / fresh["no_reanalysis_updates_per_s"] + 16 * 6 / fresh["pass_roots_per_s"])
    assert fresh["pass_updates_per_s"] == pytest.approx(expected, rel=1e-12)
    assert fresh["pass_vs_per_update"] == pytest.approx(
        expected / fresh["per_update_reanalysis_updates_per_s"], rel=1e-12)
    assert fresh["sampled_positions_per_s"] == pytest.approx(
        {"per_update": 16 * fresh["per_update_reanalysis_updates_per_s"], "pass": 16 * expected},
        rel=1e-12)
    assert table[-1].startswith("fresh targets for 99% of batch 16: per-update reanalysis ")


def test_bench_gpu_quick(capsys):
    result, table = _run("gpu", capsys)
    assert set(result) == HEADER | {
        "preset", "game", "train_compile_s", "updates_per_s", "device_memory_bytes",
        "train_peak_bytes", "search_peak_bytes", "act_peak_bytes",
        "search_batch", "search_s_per_call", "search_sims_per_s",
        "act_batch", "act_s_per_call", "act_sims_per_s",
        "ale_env_steps_per_s", "projected_hours_per_game", "projected_split_s", "pass_path"}
    assert result["preset"] == "atari100k (quick sizes)" and result["game"] == "pong"
    preset = config_lib.atari100k()
    N, sims = preset.run.num_envs, 4  # quick: search.num_simulations=4, also when acting
    assert result["search_batch"] == 4 and result["act_batch"] == N
    # a CPU reports no memory limit; the peaks are XLA's, and the learner's holds its replay
    assert result["device_memory_bytes"] is None
    assert result["train_peak_bytes"] > result["search_peak_bytes"] > 0
    assert result["act_peak_bytes"] > 0
    for key in ("train_compile_s", "updates_per_s", "search_s_per_call", "act_s_per_call",
                "ale_env_steps_per_s"):
        assert _rate(result[key]), key
    # derived figures, recomputed from the measured ones (float64 arithmetic: rel 1e-9)
    assert result["search_sims_per_s"] == pytest.approx(4 * sims / result["search_s_per_call"],
                                                        rel=1e-9)
    assert result["act_sims_per_s"] == pytest.approx(N * sims / result["act_s_per_call"], rel=1e-9)
    real = preset.run.real_steps
    acting = real / N * result["act_s_per_call"] + real / result["ale_env_steps_per_s"]
    learning = preset.train.train_ratio * real / result["updates_per_s"]
    assert result["projected_split_s"] == pytest.approx({"acting": acting, "learning": learning},
                                                        rel=1e-9)
    assert result["projected_hours_per_game"] == pytest.approx((acting + learning) / 3600,
                                                               rel=1e-9)
    # the pass path: the learner without per-update reanalysis plus a pass over every stored row
    # after each target refresh; its projected roots recomputed by hand from the preset's fields
    path = result["pass_path"]
    assert set(path) == {"learner_compile_s", "learner_peak_bytes", "learner_updates_per_s",
                         "stored_rows", "pass_roots_per_s_16", "pass_peak_bytes_16", "pass_chunk",
                         "pass_interval", "projected_pass_roots", "projected_learning_s"}
    assert path["stored_rows"] == 64 * N and path["pass_chunk"] == 16  # quick: 64 rows per copy
    assert path["pass_interval"] == preset.train.target_update_interval == 200
    # updates 200, 400, ..., 120,000: the replay holds 2,000 + u / 1.2 rows, at most 4 x 25k
    assert path["projected_pass_roots"] == pytest.approx(
        sum(min(100_000, 2_000 + u / 1.2) for u in range(200, 120_001, 200)), rel=1e-9)
    assert path["projected_learning_s"] == pytest.approx(
        120_000 / path["learner_updates_per_s"]
        + path["projected_pass_roots"] / path["pass_roots_per_s_16"], rel=1e-9)
    assert _rate(path["learner_updates_per_s"]) and _rate(path["pass_roots_per_s_16"])
    assert [line.split()[0] for line in table] == ["train", "pass", "learner", "search", "act",
                                                   "ALE", "projected"]


def test_bench_dream_quick(capsys):
    result, table = _run("dream", capsys)
    assert set(result) == HEADER | {"cases"}
    (name,) = result["cases"]
    case = result["cases"][name]
    assert name == "minatar" and case["world"] == "minatar/breakout"
    assert set(case) == {"world", "rows", "simulations", "pass_model_steps_per_s", "pass_chunk",
                         "pass_model_steps_per_s_by_chunk", "best_pass_chunk",
                         "limit_model_steps_per_s", "limit_batch", "limit_by_batch", "efficiency"}
    chunk = config_lib.minatar().train.reanalyse_pass_chunk  # the preset's, whatever it is
    assert (case["rows"], case["simulations"], case["pass_chunk"]) == (128, 16, chunk)
    assert list(case["limit_by_batch"]) == ["64", "256"]  # the quick sizes
    assert all(_rate(r) for r in case["limit_by_batch"].values())
    assert case["limit_model_steps_per_s"] == max(case["limit_by_batch"].values())
    assert str(case["limit_batch"]) == max(case["limit_by_batch"], key=case["limit_by_batch"].get)
    assert list(case["pass_model_steps_per_s_by_chunk"]) == [str(chunk)]
    assert case["best_pass_chunk"] == chunk
    assert case["pass_model_steps_per_s"] == case["pass_model_steps_per_s_by_chunk"][str(chunk)]
    # the efficiency is the pass's rate over the limit, measured in the same process
    assert case["efficiency"] == pytest.approx(
        case["pass_model_steps_per_s"] / case["limit_model_steps_per_s"], rel=1e-12)
    assert table[0].startswith("limit: ")
    assert table[1].startswith(f"pass, chunk {chunk:5d}: 128 rows")


def test_limit_program_keeps_every_head_the_search_reads():
    """The limit times the whole recurrent function: XLA must not drop the value-prefix LSTM or
    the policy head as dead code (it did while the program summed values alone), so the
    compiled program holds their matmuls, and its result moves with the policy head's weights."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import worlds
    from dreamer import learner
    from dreamer.networks import make_model

    cfg = config_lib.minatar()
    spec = worlds.make("minatar/breakout").spec
    model = make_model(cfg.model, spec)
    params = learner.init_train_state(model, cfg, jax.random.key(0),
                                      np.zeros(spec.observation_shape, np.float32)).params
    ((program, observation),) = bench.limit_programs(model, params, spec, cfg, (8,), 3).values()
    hlo = program.lower(params, observation).compile().as_text()
    for head in ("value_prefix/lstm", "prefix_head", "policy_head", "value_head", "dynamics"):
        assert f"{head}" in hlo, head
    moved = jax.tree.map(lambda x: x, params)
    moved["params"]["policy_head_1"] = jax.tree.map(lambda x: x + 1.0,
                                                    params["params"]["policy_head_1"])
    assert not np.array_equal(np.asarray(program(params, observation)),
                              np.asarray(program(moved, observation)))
    assert jnp.asarray(program(params, observation)).shape == (8,)
