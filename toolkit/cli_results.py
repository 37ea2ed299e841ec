"""`edgesmith report` and `edgesmith select`: commands on the folder of a finished run."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from toolkit.cli_options import add_json, budget, print_result
from toolkit.errors import EdgesmithError, first_line
from toolkit.records import load_results

def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `report` and `select` to the command parser."""
    report = commands.add_parser("report", help="rebuild a run's reports from its results.json", parents=[common],
                                 description="Rewrite report.md and report.html of a run folder from its results.json and run.json.")
    report.add_argument("run_dir", type=Path, help="the folder of a finished `edgesmith run`")
    report.set_defaults(handler=_report)

    select = commands.add_parser("select", help="pick the best variant of a finished run for a target and budget", parents=[common],
                                 description="Choose the artifact to ship on one target, and say why every other one lost.")
    select.add_argument("run_dir", type=Path, help="the folder of a finished `edgesmith run`")
    select.add_argument("--target", required=True, help="a target the run exported for")
    select.add_argument("--max-accuracy-drop", type=budget, metavar="PP",
                        help="accuracy drop budget in percentage points (default: the run's own)")
    select.add_argument("--max-mae-increase", type=budget, metavar="PCT",
                        help="a regression's budget instead: MAE increase in percent of the full model's (default: the run's own)")
    select.add_argument("--max-latency-ms", type=budget, metavar="MS", help="p50 latency budget, 0 = no limit (default: the run's own)")
    select.add_argument("--max-size-kb", type=budget, metavar="KB", help="file size budget, 0 = no limit (default: the run's own)")
    add_json(select, "the winner (a result record, or null) and the reason each other artifact lost")
    select.set_defaults(handler=_select)


def _report(args: argparse.Namespace) -> int:
    from toolkit.outputs import write_reports

    records, info = load_results(args.run_dir)
    try:
        write_reports(args.run_dir, records, info)
    except OSError as exc:
        raise EdgesmithError(f"cannot write the reports into {args.run_dir} ({exc.strerror})", "check the folder's permissions") from None
    except (KeyError, TypeError, ValueError) as exc:  # a hand-edited run.json or record of the wrong shape
        raise EdgesmithError(f"{args.run_dir}'s run.json or results.json lacks what the report shows "
                             f"({type(exc).__name__}: {first_line(exc)})", "re-run `edgesmith run` to rebuild them") from None
    print(f"rebuilt {args.run_dir / 'report.md'} and {args.run_dir / 'report.html'}")
    return 0


def _select(args: argparse.Namespace) -> int:
    from toolkit.selection import select_best

    records, info = load_results(args.run_dir)
    run_budget = info.get("budget") if isinstance(info.get("budget"), dict) else {}
    quality_given = args.max_accuracy_drop is not None or args.max_mae_increase is not None

    def given_or_the_runs(value: float | None, key: str, run_default: bool = True) -> float | None:
        return run_budget.get(key) if value is None and run_default else value

    selection = select_best(records, args.target,
                            given_or_the_runs(args.max_accuracy_drop, "max_accuracy_drop_pp", not quality_given),
                            given_or_the_runs(args.max_latency_ms, "max_latency_ms") or None,
                            given_or_the_runs(args.max_size_kb, "max_size_kb") or None,
                            given_or_the_runs(args.max_mae_increase, "max_mae_increase_pct", not quality_given))
    print_result(args.json, selection.to_dict(), selection.format_text)
    return 0 if selection.winner is not None else 1
