"""Execute a notebook of ``notebooks/`` with nbclient and collect what it displayed."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass
class Executed:
    """How many PNG figures a notebook displayed, and all the text it printed."""

    images: int
    text: str


def execute(name: str, cwd: Path | None = None, timeout: int = 600) -> Executed:
    """Run ``notebooks/<name>.ipynb`` top to bottom in ``cwd`` (default: the notebooks folder).

    Fails if the committed notebook holds outputs (they are stripped) or if any cell raises.
    """
    path = NOTEBOOKS / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(cell.get("outputs") for cell in code), f"{path.name} is committed with outputs"
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd or NOTEBOOKS)}}).execute()
    outputs = [output for cell in code for output in cell.outputs]
    return Executed(images=sum("image/png" in o.get("data", {}) for o in outputs),
                    text="".join(o.get("text", "") for o in outputs))
