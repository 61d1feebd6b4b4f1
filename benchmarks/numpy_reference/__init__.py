"""An independent, plainly vectorised NumPy implementation of the cpojax yield model.

A second implementation of the same equations (docs/model.md), written from the
formulas rather than from the JAX code, so that a physics regression in either shows up
as a disagreement, and a baseline for the benchmarks (benchmarks/bench_pipeline.py).

What it covers: every model switch of ``Scenario.system`` that changes the limit states
(``laser_mode`` spec/paired, ``els_cooled``, ``els_power_control``, ``self_heating``,
``fiber_array`` rigid/translation with both fiber maps, ``thermal_coupling`` (engine
crosstalk solve, on-die map, the uniform-neighbour lane model), ``ring_response``
cmt/first_order, ``pam4_levels`` four/outer, ``modulation`` pam4/nrz,
``extra_spreads``, ``limits.allow_order_hop``), the process-variation hierarchy
(wafer/die/lane/laser levels, truncated normals, correlations, the rigid array's lever
arms) and the counters of the crude-MC yield engine (:mod:`.pipeline`). Not covered:
the reported-only Budget fields (bandwidth, wall-plug efficiency, …) and the functional
yield factor (a closed form outside the Monte Carlo loop).

Modules: :mod:`.hierarchy` (u → deviations, standardized z), :mod:`.lane` (lane and
engine limit states at the four corners), :mod:`.pipeline` (per-block yield counters).
Float32 and float64: every array and scalar is cast to the dtype asked for.
"""

from .hierarchy import engine_deviations, lane_deviations, standardized
from .lane import engine_g, lane_g
from .pipeline import block_counts, numpy_normals, yield_counts

__all__ = [
    "block_counts",
    "engine_deviations",
    "engine_g",
    "lane_deviations",
    "lane_g",
    "numpy_normals",
    "standardized",
    "yield_counts",
]
