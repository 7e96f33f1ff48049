"""`python -m reviews_pipeline.reliability` (`make reliability`): run every scenario and print the report.

Exits 0 only if every scenario came through with nothing lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from .checks import ScenarioResult
from .inputs import DEFAULT_DATA_DIR
from .scenarios import SCENARIOS, run_scenario


def render(results: list[ScenarioResult]) -> str:
    lines = ["amazon-reviews-nlp reliability report", ""]
    lines.append(
        f"{'scenario':<20} {'result':<9} {'files':>5} {'faults':>6} {'bad':>4} {'rows in':>8} {'lost':>5} {'secs':>6}"
    )
    for result in results:
        injected = sum(int(fault["injected"]) for fault in result.faults)
        lines.append(
            f"{result.name:<20} {'survived' if result.survived else 'FAILED':<9} {result.files_tried:>5} "
            f"{injected:>6} {len(result.bad_inputs):>4} {result.rows_in:>8} {result.rows_lost:>5} "
            f"{result.seconds:>6.1f}"
        )
    for result in results:
        lines += ["", f"== {result.name}: {result.title}"]
        lines += [
            f"   fault: {fault['name']} ({fault['what']}), injected {fault['injected']}" for fault in result.faults
        ]
        kinds = Counter(bad.partition(": ")[2] or bad for bad in result.bad_inputs)
        lines += [f"   bad input: {kind}" + (f" (x{count})" if count > 1 else "") for kind, count in kinds.items()]
        lines += [f"   PROBLEM: {problem}" for problem in result.problems]
    totals = totals_of(results)
    lines += [
        "",
        f"files tried: {totals['files_tried']}",
        f"faults injected: {totals['faults_injected']} in {totals['fault_kinds']} kinds; "
        f"survived: {totals['scenarios_survived']} of {totals['scenarios']} scenarios",
        f"bad inputs tried: {totals['bad_inputs']}",
        f"rows in: {totals['rows_in']}",
        f"rows lost: {totals['rows_lost']}",
    ]
    return "\n".join(lines)


def totals_of(results: list[ScenarioResult]) -> dict[str, Any]:
    return {
        "scenarios": len(results),
        "scenarios_survived": sum(result.survived for result in results),
        "files_tried": sum(result.files_tried for result in results),
        "fault_kinds": sum(len(result.faults) for result in results),
        "faults_injected": sum(int(fault["injected"]) for result in results for fault in result.faults),
        "bad_inputs": sum(len(result.bad_inputs) for result in results),
        "rows_in": sum(result.rows_in for result in results),
        "rows_lost": sum(result.rows_lost for result in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reviews_pipeline.reliability", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="the real review files (../shared/data)")
    parser.add_argument("--only", nargs="+", choices=[scenario.name for scenario in SCENARIOS], help="run only these")
    parser.add_argument("--json", type=Path, help="also write the full report (with evidence) here")
    arguments = parser.parse_args(argv)
    if not arguments.data.is_dir():
        print(f"no real review files at {arguments.data}; pass --data", file=sys.stderr)
        return 2
    names = arguments.only or [scenario.name for scenario in SCENARIOS]
    results = []
    with tempfile.TemporaryDirectory(prefix="reviews-reliability-") as scratch:
        for name in names:
            print(f"running {name} …", file=sys.stderr, flush=True)
            results.append(run_scenario(name, arguments.data, Path(scratch) / name))
    print(render(results))
    if arguments.json:
        document = {"totals": totals_of(results), "scenarios": [result.as_dict() for result in results]}
        arguments.json.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    failed = not all(result.survived for result in results) or totals_of(results)["rows_lost"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
