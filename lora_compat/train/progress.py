"""The training progress bar (rich): step, loss, learning rate and the last validation loss."""

from __future__ import annotations

from typing import Any


class Progress:
    """A rich progress bar (or nothing) showing step, loss and LR."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.enabled = enabled
        self.total = total
        self.start = start
        self._p: Any = None
        self._task: Any = None
        self._validation = ""

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                               TextColumn("{task.fields[info]}"), transient=False)
            self._p.__enter__()
            self._task = self._p.add_task("train", total=self.total, completed=self.start, info="")
        return self

    def advance(self, loss: float, lr: float, extra: str = "") -> None:
        """One optimizer step; ``extra`` is shown after the LR (e.g. scale_weight_norms' keys scaled)."""
        if self._p is not None:
            self._p.update(self._task, advance=1, info=f"loss {loss:.4f} lr {lr:.3g}{extra}{self._validation}")

    def set_validation(self, loss: float) -> None:
        """Show the last validation loss after the training loss."""
        self._validation = f" val {loss:.4f}"
        if self._p is not None:
            info = self._p.tasks[0].fields.get("info", "") if self._p.tasks else ""
            self._p.update(self._task, info=info.split(" val ")[0] + self._validation)

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)
