"""Commands that read a sweep's results: sweeps, results, report, and import of the classic script's CSVs."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from farm.commands.common import DbOption, NameArg, coerce, err, open_store, out, settings, styled
from farm.commands.views import DEFAULT_KEYS, sweeps_table, varying_keys
from farm.errors import SpecError


def sweeps(db: DbOption = None) -> None:
    """List the sweeps in the store with their progress."""
    store = open_store(settings(db))
    out.print(sweeps_table(store.sweeps()))


def _records(store: Any, name: str) -> list[dict[str, Any]]:
    from farm.analysis.records import cell_record

    return [cell_record(c) for c in store.cells(name)]


def results(
    name: NameArg,
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="table|csv|json", help="table, csv or json")] = "table",
    db: DbOption = None,
) -> None:
    """Print a sweep's cells and their measurements (table, CSV or JSON)."""
    if fmt not in ("table", "csv", "json"):
        raise SpecError(f"--format: '{fmt}' is not a format; use table, csv or json")
    store = open_store(settings(db))
    records = _records(store, name)
    if fmt == "json":
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    elif fmt == "csv":
        sys.stdout.write(_csv(records))
    else:
        print_results(store, name)


def _csv(records: list[dict[str, Any]]) -> str:
    params = sorted({k for r in records for k in r["params"]})
    fields = ["id", "status", *params, "repetition", "host", "requests", "failures", "rps", "p50_ms", "p95_ms",
              "p99_ms", "p95_ok_ms", "cache_hit_ratio", "generator_cpu_pct", "generator_saturated", "offered_rps",
              "achieved_rps", "rate_saturated", "host_cpu_pct", "stack_set_cpu_pct", "host_saturated", "cost",
              "cpu_ms_per_request", "unfinished_requests", "users_active", "users_stalled", "late_starts",
              "concurrency_ratio", "load_stalled", "load_mismatch"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({**r, **r["params"]})
    return buf.getvalue()


def print_results(store: Any, name: str) -> None:
    """Print a sweep's cells as a table, then its crossovers and recommendation."""
    from farm.report.build import analysis_for

    records = _records(store, name)
    varying = varying_keys(store.sweep_spec(name)[0])
    params = [k for k in (*DEFAULT_KEYS, *(k for k in varying if k not in DEFAULT_KEYS))
              if any(k in r["params"] for r in records)]  # replicas.<service>: only where it runs
    short = {"architecture": "arch", "instances": "inst"}
    table = Table(*(short.get(k, k) for k in params), "rep", "status", "rps", "p50 ms", "p95 ms", "p99 ms",
                  "p95 ok", "errors", "hit ratio", title=f"sweep {name}")
    for r in records:
        def num(v: Any, f: str = "{:.0f}") -> str:
            return "–" if v is None else f.format(v)
        table.add_row(*(str(r["params"].get(k, "–")) for k in params), str(r["repetition"]),
                      r["status"] + flags(r),
                      num(r["rps"], "{:.1f}"), num(r["p50_ms"]), num(r["p95_ms"]), num(r["p99_ms"]),
                      num(r["p95_ok_ms"]), num(r["error_ratio"], "{:.1%}"), num(r["cache_hit_ratio"], "{:.0%}"))
    out.print(table)
    analysis, provenance = analysis_for(store, name)
    for v in analysis.verdicts:
        out.print(styled(f"microservices vs monolith p95, cache {v.cache}, {v.instances} instance(s): ",
                         (v.describe(), "bold")))
    for c in analysis.cache_verdicts:
        out.print(styled(f"which cache gives the lowest {c.metric.removesuffix('_ms')}, {c.label()}: ",
                         (c.describe(), "bold")))
    for cost in analysis.cost_benefit:
        out.print(styled(f"what meeting the SLO (p95 ≤ {cost.slo_ms:g} ms) costs, cache {cost.cache}: ",
                         (cost.describe(), "bold")))
    for line in flag_summary(records):
        out.print(line)
    if provenance.slo and analysis.recommendation:
        out.print("cheapest configuration meeting the SLO: " + "; ".join(analysis.recommendation))


def flags(record: dict[str, Any]) -> str:
    """What a cell is flagged with, for the status column: a saturated generator (excluded from the answer), a
    rate offered but not achieved, a saturated host, stalled users, unfinished requests, a Little's-law mismatch
    (results, kept)."""
    from farm.load.omission import load_flags

    found = []
    if record.get("generator_saturated"):
        found.append("gen. saturated")
    if record.get("rate_saturated"):
        found.append(f"saturated: {record['achieved_rps']:.0f} of {record['offered_rps']:g} req/s")
    if record.get("host_saturated"):
        found.append("host saturated")
    found += load_flags(record)
    return "".join(f" ({text})" for text in found)


def flag_summary(records: list[dict[str, Any]]) -> list[str]:
    """One line per kind of flagged cell that is kept in the answer: a rate not achieved, a saturated host."""
    lines = []
    short = sum(1 for r in records if r.get("rate_saturated"))
    if short:
        lines.append(f"{short} cell(s) achieved less than 95% of the rate offered: saturated, kept as results "
                     "(such a point never counts as the faster one)")
    hot = sum(1 for r in records if r.get("host_saturated"))
    if hot:
        lines.append(f"{hot} cell(s) ran on a saturated host (≥ 90% CPU of the stack's set or of the host)")
    stalled = sum(1 for r in records if r.get("load_stalled"))
    if stalled:
        lines.append(f"{stalled} cell(s) with stalled users or late starts: their latency is a lower bound, kept as "
                     "results (such a point never counts as the faster one, nor as meeting the SLO)")
    mismatch = sum(1 for r in records if r.get("load_mismatch"))
    if mismatch:
        lines.append(f"{mismatch} cell(s) where Little's law does not hold (users ≠ throughput × (response + think "
                     "time) within 10%): the users' time went somewhere the farm does not measure")
    return lines


def report(
    name: NameArg,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                         help="the HTML file to write")] = Path("report.html"),
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="html|md|json",
                                     help="html (a file), md or json (printed)")] = "html",
    metric: Annotated[str, typer.Option(metavar="METRIC",
                                        help="latency metric compared: p50_ms, p95_ms or p99_ms")] = "p95_ms",
    cost: Annotated[list[str] | None, typer.Option(metavar="ARCH=N",
                                                   help="cost per instance (repeatable; default 1)")] = None,
    figures: Annotated[Path | None, typer.Option(metavar="FOLDER",
                                                 help="also write every figure as PNG and SVG here")] = None,
    db: DbOption = None,
) -> None:
    """Report a sweep: verdict per cache setting with its intervals, recommendation, surfaces, provenance."""
    from farm.report.build import report_json, write_report

    if fmt not in ("html", "md", "json"):
        raise SpecError(f"--format: '{fmt}' is not a report format; use html, md or json")
    if metric not in ("p50_ms", "p95_ms", "p99_ms"):
        raise SpecError(f"--metric: '{metric}' is not comparable; use p50_ms, p95_ms or p99_ms")
    costs = _costs(cost or [])
    store = open_store(settings(db))
    if fmt == "json":
        sys.stdout.write(json.dumps(report_json(store, name, metric=metric, costs=costs), indent=2) + "\n")
        return
    result = write_report(store, name, output, fmt=fmt, metric=metric, costs=costs, figures_dir=figures)
    if fmt == "md":
        sys.stdout.write(result)
    else:
        out.print(f"report: {result}")
    if figures is not None:
        out.print(f"figures: {figures}/")


def _costs(items: list[str]) -> dict[str, float]:
    costs = {}
    for item in items:
        arch, sep, raw = item.partition("=")
        try:
            costs[arch] = float(raw)
        except ValueError:
            raise SpecError(f"--cost {item}: expected ARCH=NUMBER, e.g. --cost microservices=1.5") from None
        if not sep or costs[arch] < 0:
            raise SpecError(f"--cost {item}: expected ARCH=NUMBER, e.g. --cost microservices=1.5")
    return costs


def write_html_report(store: Any, name: str, path: Path) -> None:
    """Write the HTML report of a sweep to ``path``."""
    from farm.report.build import write_report

    write_report(store, name, path)


def import_(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", show_default=False,
                                           help="folder with the classic script's output_u_U_i_I_stats.csv files")],
    sweep: Annotated[str, typer.Option("--sweep", metavar="NAME", help="name of the new sweep")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE",
                                                    help="KEY=VALUE recorded on every cell, "
                                                    "e.g. architecture=monolith (repeatable)")] = None,
    db: DbOption = None,
) -> None:
    """Import the classic script's Locust CSVs as a sweep, to analyse old runs beside new ones."""
    from farm.host import fingerprint
    from farm.importer import scan
    from farm.spec import check_sweep_name

    check_sweep_name(sweep, "--sweep")
    fixed: dict[str, Any] = {}
    for item in param or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--param {item}: expected KEY=VALUE, e.g. --param architecture=monolith")
        fixed[key] = coerce(raw, 0) if raw.lstrip("-").replace(".", "", 1).isdigit() else raw
    found = scan(folder, fixed)
    for name, problem in found.problems:
        err.print(styled(("unreadable:", "red"), f" {folder / name}: {problem}"))
    if not found.cells:
        raise SpecError(f"{folder}: no readable output_u_{{U}}_i_{{I}}_stats.csv file to import")
    store = open_store(settings(db))
    spec = {"stack": "classic-import", "imported_from": str(folder.resolve()), "params": fixed,
            "files": [c.source for c in found.cells]}
    info = store.import_sweep(sweep, spec, f"# imported from {folder.resolve()}\n", found.cells,
                              host=fingerprint()["name"])
    out.print(styled(f"imported {info.total} cells into sweep ", (sweep, "bold"),
                     f"; {len(found.problems)} file(s) unreadable" if found.problems else ""))
    raise typer.Exit(1 if found.problems else 0)

