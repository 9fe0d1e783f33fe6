"""`dreamer bench` runs at a quick size, so the benchmark commands cannot rot."""

import json

import pytest

from dreamer import bench


@pytest.mark.parametrize("what", ["worlds", "search", "train", "gpu"])
def test_bench_quick(what, capsys):
    assert bench.main(what, quick=True) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bench"] == what
    if what == "search":
        for case in result["cases"]:
            assert case["ours_sims_per_s"] > 0 and case["throughput_ratio_vs_raw_mctx"] > 0
    if what == "train":
        assert all(r["updates_per_s"] > 0 for k, r in result.items()
                   if isinstance(r, dict) and "updates_per_s" in r)
    if what == "gpu":
        assert result["updates_per_s"] > 0 and result["search_sims_per_s"] > 0
        assert result["ale_env_steps_per_s"] > 0
        assert result["projected_hours_per_game"] > 0
    if what == "worlds":
        assert result["jax_worlds_steps_per_s"]["cartpole"]["16"] > 0
        assert result["jax_worlds_steps_per_s"]["text/coin"]["16"] > 0
        assert result["step_batch_vs_vmap_step"]["text/coin"] > 0
