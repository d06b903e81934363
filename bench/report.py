"""The benchmark's output: one table of measurements, one table of goals (ratio, PASS/FAIL/SKIP)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    """One measured scenario."""

    scenario: str
    tool: str = ""
    requests: int = 0
    rps: float = float("nan")
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    cpu_ms_per_req: float = float("nan")
    rss_mb: str = ""
    errors: int = 0
    other_cores: float = float("nan")
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Goal:
    what: str
    threshold: str  # e.g. ">= 0.90"
    value: float | None = None
    shown: str = ""  # how the value reads (ratio, count...)
    status: str = "SKIP"
    detail: str = ""

    def judge(self, value: float | None, *, shown: str = "", detail: str = "", ok: bool | None = None) -> None:
        """Set the value; PASS/FAIL from ``ok`` or else from the threshold; SKIP when there is no value."""
        self.value, self.detail = value, detail
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.status, self.shown = "SKIP", shown or "-"
            return
        self.shown = shown or f"{value:.2f}"
        if ok is None:
            op, limit = self.threshold.split()
            ok = {">=": value >= float(limit), "<=": value <= float(limit), "==": value == float(limit)}[op]
        self.status = "PASS" if ok else "FAIL"

    def skip(self, why: str) -> None:
        self.value, self.status, self.shown, self.detail = None, "SKIP", "-", why


def _num(v: float, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def rows_table(rows: list[Row]) -> str:
    headers = ["scenario", "load", "requests", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "worker RSS MB", "errors", "other load", "note"]
    body = [
        [
            r.scenario,
            r.tool,
            str(r.requests) if r.requests else "-",
            _num(r.rps),
            _num(r.p50_ms, 2),
            _num(r.p99_ms, 2),
            _num(r.cpu_ms_per_req, 2),
            r.rss_mb or "-",
            str(r.errors),
            "-" if math.isnan(r.other_cores) else f"{r.other_cores:.2f}",
            r.note,
        ]
        for r in rows
    ]
    return table(headers, body, right={2, 3, 4, 5, 6, 8, 9})


def goals_table(goals: list[Goal]) -> str:
    headers = ["goal", "target", "measured", "result", "how"]
    body = [[g.what, g.threshold, g.shown, g.status, g.detail] for g in goals]
    return table(headers, body, right={2})
