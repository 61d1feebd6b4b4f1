"""Strip the outputs of the notebooks before committing them (see notebooks/README.md).

    python notebooks/strip.py            # strip every notebooks/*.ipynb in place
    python notebooks/strip.py --check    # exit 1 if any notebook has outputs (changes nothing)
    python notebooks/strip.py FILE ...   # only these notebooks

Clears every code cell's outputs and execution count, drops per-cell execution metadata
and keeps only ``kernelspec`` and ``language_info.name`` in the notebook metadata, so a
notebook saved from Jupyter after a run diffs only in what was edited. Needs nbformat.
"""

from __future__ import annotations

import pathlib
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without outputs, execution counts and run metadata (a new object)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nb


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [pathlib.Path(a) for a in argv if a != "--check"] or sorted(HERE.glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        clean = strip(nb)
        if clean == nb:
            continue
        dirty.append(path)
        if not check:
            nbformat.write(clean, path)
            print(f"stripped {path}")
    if check and dirty:
        print("notebooks with outputs or run metadata: " + ", ".join(map(str, dirty)))
        print("run: python notebooks/strip.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
