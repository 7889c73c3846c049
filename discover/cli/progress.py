"""Progress of long commands: a rich bar on a terminal, plain lines in a log file.

Rich draws nothing when its console is not a terminal (a batch job, `nohup`, `> log`), so a
long command would print nothing. `progress_display` returns a rich
`Progress` on a terminal, and otherwise a `PlainProgress` with the same `add_task`,
`update`, `advance` and context-manager use, which prints one line (what runs, done/total,
elapsed, ETA, and the task's fields) at most every `every` seconds and at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from rich.progress import Progress


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """A rich-Progress look-alike for non-terminals: throttled plain progress lines."""

    def __init__(self, unit: str = "", every: float = 30.0, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.unit, self.every, self.clock = unit, every, clock
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.tasks: dict[int, dict[str, Any]] = {}
        self.last_line = -float("inf")

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        for task_id in self.tasks:
            self._print(task_id)

    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        task_id = len(self.tasks)
        self.tasks[task_id] = {"description": description, "total": total, "completed": 0,
                               "started": self.clock(), "first_done": None, "fields": fields}
        return task_id

    def update(self, task_id: int, *, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float = 0, **fields) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task["total"] = total
        if description is not None:
            task["description"] = description
        before = task["completed"]
        task["completed"] = (task["completed"] if completed is None else completed) + advance
        if task["first_done"] is None and task["completed"] != before:
            # The rate is measured from the first step done, so compilation is not counted.
            task["first_done"] = (self.clock(), task["completed"])
        task["fields"].update(fields)
        if self.clock() - self.last_line >= self.every:
            self._print(task_id)

    def advance(self, task_id: int, amount: float = 1) -> None:
        self.update(task_id, advance=amount)

    def _print(self, task_id: int) -> None:
        task, now = self.tasks[task_id], self.clock()
        done, total = task["completed"], task["total"]
        parts = [task["description"], f"{done:g}/{total:g}{' ' + self.unit if self.unit else ''}" if total
                 else f"{done:g}", f"elapsed {_clock(now - task['started'])}"]
        if task["first_done"] and total and done > task["first_done"][1]:
            since, base = task["first_done"]
            rate = (done - base) / max(now - since, 1e-9)
            parts.append(f"ETA {_clock((total - done) / rate)}" if rate > 0 else "ETA -")
        # A field whose text starts with a space is already labelled (as in a rich column).
        parts += [str(v).strip() if str(v).startswith(" ") else f"{k} {v}"
                  for k, v in task["fields"].items() if str(v).strip()]
        self.write("  ".join(parts))
        self.last_line = now


def progress_display(console, *columns, unit: str = "", every: float = 30.0):
    """A rich `Progress(*columns)` on `console` if it is a terminal, else a `PlainProgress`."""
    if console.is_terminal:
        return Progress(*columns, console=console)
    return PlainProgress(unit=unit, every=every, write=lambda line: console.print(line, highlight=False,
                                                                                  soft_wrap=True))
