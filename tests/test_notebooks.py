"""The research notebooks (notebooks/*.ipynb) run, and are committed without outputs.

* ``test_notebook_runs`` executes each notebook top to bottom with nbclient in a fresh
  ``python3`` kernel, in a temporary folder, at the small sample counts of its ``SCALE = 1``
  (``CPOJAX_NB_SCALE``): any cell error fails, and so does any ``check(...)`` guard of the
  notebook's text (a sentence of "What the engineer learns" the numbers no longer support).
  The time budget is "3 minutes on 2 cores": the kernel may use at most ``CPU_LIMIT_S``
  seconds of CPU time (user + system, all its threads, read in the kernel after the last
  cell), which bounds the wall time on an idle 2-core machine whatever the load on a
  shared one; the wall time only has a generous cap (``WALL_LIMIT_S``, each cell as well)
  so that a loaded machine does not fail the test. Marked slow; CI runs it.
* ``test_notebooks_committed_clean`` checks what git holds: the four notebooks of the
  research set exist, are valid nbformat 4, carry no outputs, execution counts or run
  metadata, and stay small (notebooks/README.md says why).

Needs nbformat, nbclient and ipykernel (the ``test`` extra).
"""

from __future__ import annotations

import os
import pathlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = (
    "01_link_budget.ipynb",
    "02_yield_and_failure_modes.ipynb",
    "03_optimize_process.ipynb",
    "04_cpo_vs_pluggable.ipynb",
)
NOTEBOOKS = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))
CPU_LIMIT_S = 180  # kernel CPU seconds per notebook: <= 3 minutes of wall time on 2 idle cores
WALL_LIMIT_S = 900  # per notebook and per cell, seconds: only a hang guard on a shared machine
MAX_BYTES = 64 * 1024  # a stripped notebook is a few tens of kB


def _kernel_env() -> dict[str, str]:
    """The environment a user's kernel would see: no test-suite device faking (conftest
    asks XLA for several host devices), the small sample counts, CPU JAX."""
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        env["XLA_FLAGS"] = " ".join(
            f for f in flags.split() if "xla_force_host_platform_device_count" not in f
        )
    env["CPOJAX_NB_SCALE"] = "1"
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _cpu_seconds_cell() -> nbformat.NotebookNode:
    """A last cell that prints the kernel's CPU time (all threads: XLA's pool included)."""
    return nbformat.v4.new_code_cell(
        "import resource as _r\n"
        "_u = _r.getrusage(_r.RUSAGE_SELF)\n"
        "print('KERNEL_CPU_S', _u.ru_utime + _u.ru_stime)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path, record_property):
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    nb.cells.append(_cpu_seconds_cell())
    client = NotebookClient(
        nb,
        timeout=WALL_LIMIT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    t0 = time.perf_counter()
    client.execute(env=_kernel_env())  # raises CellExecutionError on the first failing cell
    wall = time.perf_counter() - t0
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    cpu = float(text.split("KERNEL_CPU_S")[1].split()[0])
    record_property("wall_s", round(wall, 1))
    record_property("cpu_s", round(cpu, 1))
    print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s kernel CPU (load {os.getloadavg()[0]:.2f})")
    assert cpu < CPU_LIMIT_S, f"{name} used {cpu:.0f} s of CPU, more than {CPU_LIMIT_S} s"
    assert wall < WALL_LIMIT_S, f"{name} took {wall:.0f} s, more than {WALL_LIMIT_S} s"


def test_notebooks_committed_clean():
    missing = sorted(set(EXPECTED) - set(NOTEBOOKS))
    assert not missing, f"notebooks missing from notebooks/: {missing}"
    for name in NOTEBOOKS:
        path = NOTEBOOKS_DIR / name
        size = path.stat().st_size
        assert size < MAX_BYTES, f"{name} is {size} bytes: strip it (python notebooks/strip.py)"
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", name
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"{name} cell {i}: run `python notebooks/strip.py` before committing"
            assert cell.outputs == [], f"{where} (it has outputs)"
            assert cell.execution_count is None, f"{where} (it has an execution count)"
            assert not cell.metadata, f"{where} (it has run metadata)"
