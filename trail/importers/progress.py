"""The progress of an import on stderr, phase by phase (reading the file, writing the days).

On a terminal one line is redrawn (at most 10 times a second) with the phase, a bar, rows,
bytes and the estimated time left of the phase; otherwise (a log, a pipe) a plain line is
written every few seconds, so a long import run by cron or systemd still shows it is alive.
"""

from __future__ import annotations

import time as clock
from typing import IO

from trail.export import Progress

# Seconds between two plain lines when stderr is not a terminal.
PLAIN_EVERY_S = 5.0


class ImportProgress(Progress):
    """Progress (trail.export) with phases, an ETA and plain lines off a terminal.

    A phase counts `done` of `steps` (bytes read, or days written); `rows` and `bytes` are the
    totals shown beside it."""

    def __init__(self, verb: str, stream: IO[str] | None = None, every: float = PLAIN_EVERY_S):
        super().__init__(verb, 0, stream)
        self.terminal = self.enabled
        self.enabled = True
        self.every = every
        self.phase = ""
        self.phase_started = self.started
        # Off a terminal the first line waits a period too: a short import stays quiet.
        self._drawn = 0.0 if self.terminal else self.started

    def begin(self, phase: str, steps: int) -> None:
        """Start counting a new phase of `steps` units."""
        self.phase = phase
        self.steps = max(steps, 1)
        self.done = self.rows = self.bytes = 0
        self.phase_started = clock.monotonic()

    def advance(self, done: int, rows: int, size: int) -> None:
        """The phase reached `done` units, with `rows` rows and `size` bytes so far."""
        self.done, self.rows, self.bytes = done, rows, size
        self.draw(self.phase)

    def eta(self) -> float | None:
        """Seconds left in this phase at the pace so far; None before there is a pace."""
        spent = clock.monotonic() - self.phase_started
        if self.done <= 0 or spent <= 0:
            return None
        return spent * (self.steps - min(self.done, self.steps)) / self.done

    def draw(self, label: str, force: bool = False) -> None:
        now = clock.monotonic()
        wait = 0.1 if self.terminal else self.every
        if not force and now - self._drawn < wait:
            return
        self._drawn = now
        eta = self.eta()
        left = f"ETA {eta:5.0f} s" if eta is not None else "ETA     ? s"
        share = min(self.done, self.steps) / self.steps
        stats = (
            f"{label:<16.16} {self.rows:>12,} rows {self.bytes / 1e6:>9.1f} MB "
            f"{now - self.started:>6.1f} s {left}"
        )
        if self.terminal:
            width = 24
            bar = "#" * int(width * share) + "." * (width - int(width * share))
            self.stream.write(f"\r{self.verb} [{bar}] {stats}")
        else:
            self.stream.write(f"{self.verb}: {share:4.0%} {stats}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.terminal:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
