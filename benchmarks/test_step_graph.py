"""The whole step captured as one CUDA graph against the same step run eagerly, timed in turns in
one run (CUDA only: on a CPU there is no graph to compare; ``-m gpu`` selects it on a GPU machine).

Yardstick (issue "One training engine"): the minimal nsgan step replayed as one graph ran 1,882
steps/s on an H100 where the eager step ran 123; ganzoo's captured single run should be within 80%
of the minimal graph, i.e. at least ~12x its own eager step at batch 64.
"""

from __future__ import annotations

import pytest
import torch

from ganzoo.checks.bench import graph_vs_eager

TARGET_CUDA = {"nsgan": 10.0, "dcgan": 3.0}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", sorted(TARGET_CUDA))
def test_captured_step_over_the_eager_step(benchmark, spec, variant):
    # spec: full mode times Fashion-MNIST, whose image size the targets were set on (skipped where it is
    # not installed); --bench-mode quick times digits. ``ganzoo bench --self-check`` times digits too.
    row = benchmark.pedantic(lambda: graph_vs_eager(variant, 64, spec), rounds=1, iterations=1)
    benchmark.extra_info.update(row)
    assert row["execution"] == "cuda-graph", row
    assert row["speedup"] >= TARGET_CUDA[variant], row
