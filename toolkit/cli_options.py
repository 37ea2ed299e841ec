"""Options and value types shared by several `edgesmith` commands, so each is spelled once."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Callable

TARGETS_DIR_HELP = "a folder of extra target profiles (<name>.toml), searched before $EDGESMITH_TARGETS_DIR and the built-ins"


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def budget(text: str) -> float:
    """argparse type: a budget from 0 (what 0 means is the option's to say)."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a number from 0")
    return value


def comma_list(text: str) -> list[str]:
    """argparse type: `a,b , c` → ["a", "b", "c"]."""
    return [item.strip() for item in text.split(",") if item.strip()]


def add_json(parser: argparse.ArgumentParser, what: str, note: str = "") -> None:
    """`--json`: machine-readable stdout; messages stay on stderr."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout{note}")


def add_targets_dir(parser: argparse.ArgumentParser) -> None:
    """`--targets-dir DIR`: a folder of the user's own target profiles (`run` gets it from Experiment)."""
    parser.add_argument("--targets-dir", default="", metavar="DIR", help=TARGETS_DIR_HELP)


def print_json(data: Any) -> None:
    """One JSON document on stdout (records as their stored form, paths and the rest as strings)."""
    json.dump(data, sys.stdout, indent=2, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else str(value)


def print_result(as_json: bool, data: Any, text: Callable[[], str]) -> None:
    """A command's answer on stdout: `data` as JSON with --json, else the human-readable `text()`.
    A reader that stops early (`| head`) leaves the command's exit code as it decided."""
    try:
        if as_json:
            print_json(data)
        else:
            print(text())
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()


def discard_stdout() -> None:
    """The reader went away (`| head`): what is left unflushed goes nowhere, without an error at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
