"""Rare-event failure-probability estimators: FORM, importance sampling, subset simulation.

All methods work on the generic interface of :mod:`cpojax.estimators`: a limit-state
function of standard normals ``limit_state(u: f[n, dim]) -> f[n] | f[n, k]``, failure
where ANY column is < 0. It must be jnp-traceable and row-wise (row i of the output
depends on row i of the input only; FORM relies on this to get all per-row gradients
from one reverse pass); :func:`cpojax.estimators.limit_state.check_limit_state`
verifies it against ``dim`` before any sampling.

One module per algorithm (``method=`` of :func:`estimate_rare`):

* :mod:`.form` — ``"form"``: multi-start improved HL-RF, first-order series-system pf,
  no interval;
* :mod:`.importance` — ``"is"``: mixture importance sampling around the design points
  with cross-entropy refinement and health checks;
* :mod:`.subset` — ``"subset"``: subset simulation with aCS chains and independent
  runs;
* :mod:`.auto` — ``"auto"``: FORM → probe → Gaussian IS or vMF cross-entropy IS →
  subset fallback, and :func:`estimate_rare` itself;

and the pieces ``auto`` adds: :mod:`.explore` (the exploratory probe: missed branches,
surrounding domains), :mod:`.spherical` (cross-entropy IS with a von Mises–Fisher ×
log-normal mixture), :mod:`.health` (the importance-sampling checks, planned
stopping, the interval), :mod:`.common` (options, the invalid-output error, the
log-normal interval). :mod:`.benchmarks` holds reliability benchmark problems with
exact reference values (not imported by the package).

Every row passed to ``limit_state`` is counted in ``n_evals`` (FORM line-search trials
and gradient evaluations included: a value-and-gradient of one row counts as one
row). NaN/inf outputs are counted inside the jitted kernels and raised on the host as
:class:`~cpojax.estimators.result.InvalidModelOutput`.

The jit boundaries are the sampling/search kernels of each module, with
``limit_state`` a static argument: they compile once per (limit_state, shape) and are
reused across calls and seeds, while adaptive stopping, health checks and error
raising run on the host. Pass the same function object (not a fresh lambda) on every
call to avoid recompiling.
"""

from __future__ import annotations

from cpojax.estimators.rare.auto import estimate_rare, run_auto
from cpojax.estimators.rare.common import METHODS, Options, log_ci, parse_options
from cpojax.estimators.rare.form import run_form
from cpojax.estimators.rare.importance import run_is
from cpojax.estimators.rare.subset import run_subset

__all__ = [
    "METHODS",
    "Options",
    "estimate_rare",
    "log_ci",
    "parse_options",
    "run_auto",
    "run_form",
    "run_is",
    "run_subset",
]
