"""Parameter sweeps: yield over N-D grids of scenario values, compiled once, on every device.

A grid maps dotted scenario keys (as in ``--set``) to values; its points are the
cartesian product of the values (or, zipped, the i-th value of every key). Every
value is validated like ``--set`` — each point as a whole, so cross-field rules
hold — before anything runs.

How a sweep runs (the statistics are those of docs/model.md#yield-levels-and-statistics):

* Continuous keys are traced scenario leaves. Points are taken ``point_chunk`` at
  a time and vmapped inside each block of :data:`cpojax.rng.BLOCK` engines, so the
  work is a list of items *(point chunk, block)*, each of one compiled shape: a
  10,000-point sweep compiles once and its memory is one item per device.
* Every point sees the same engines (block b draws from ``fold_in(key, b)``:
  common random numbers), so differences between points are far more precise than
  each point's own interval, and curves are smooth.
* Items are spread over every device (:func:`cpojax.estimators.streaming.map_items`:
  ``shard_map`` + ``lax.map``, one compiled shape per item), across processes when
  ``jax.distributed`` runs (:mod:`cpojax.distributed`); every process receives
  every item's counts. The numbers are bit-identical for any device or process
  count.
* Structural keys (``system.spare_lanes``, ``system.lanes_per_engine``, …: static
  fields that set shapes or compiled branches) group the points: each group is
  compiled once, its continuous keys vmapped as above.
* With ``out`` a run folder (:class:`cpojax.outputs.RunFolder`) records the sweep
  (scenario, grid, seed, versions, devices) before computing, writes every finished
  point chunk atomically (``points/``), and ``resume=True`` finishes an interrupted
  sweep to the identical table, refusing a changed scenario, grid, seed or version.

Modules: :mod:`.grid` (:func:`make_grid`, :class:`Grid`, grouping by structural keys),
:mod:`.table` (counter rows → :class:`SweepTable`), :mod:`.run` (the per-item function,
the loop over items, :func:`sweep`, :func:`yield_curve`), :mod:`.folder` (run folder,
record and resume, figures, :func:`write_outputs`).
"""

from cpojax.sweep.folder import SWEEP_FILES, figure_name, figures, write_outputs
from cpojax.sweep.grid import Grid, make_grid
from cpojax.sweep.run import SweepProgress, sweep, yield_curve
from cpojax.sweep.table import SweepTable

__all__ = [
    "SWEEP_FILES",
    "Grid",
    "SweepProgress",
    "SweepTable",
    "figure_name",
    "figures",
    "make_grid",
    "sweep",
    "write_outputs",
    "yield_curve",
]
