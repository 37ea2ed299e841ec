"""`edgesmith targets` and `edgesmith device probe`: what edgesmith can target and where it runs."""
from __future__ import annotations

import argparse
from typing import Any

from toolkit.cli_options import add_json, add_targets_dir, print_result


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `targets` and `device probe` to the command parser."""
    targets = commands.add_parser("targets", help="list target profiles", parents=[common],
                                  description="List the target profiles found: the built-in ones and your own.")
    add_targets_dir(targets)
    add_json(targets, "every profile (name, runtime, precisions, accelerator, source file)")
    targets.set_defaults(handler=_targets)

    device = commands.add_parser("device", help="what a device is and what it can run", parents=[common])
    device_commands = device.add_subparsers(dest="device_command", required=True, help="what to ask")
    probe = device_commands.add_parser("probe", help="CPU model and int8 features, OS, Python, runtimes, delegates",
                                       parents=[common])
    probe.add_argument("device", nargs="?", metavar="URL", help="a device to probe, ssh://user@host[:port] (default: this machine)")
    add_json(probe, "the facts")
    probe.set_defaults(handler=_probe)


def _targets(args: argparse.Namespace) -> int:
    from toolkit.targets import format_target_list, list_targets, target_summary

    found = list_targets(args.targets_dir)
    print_result(args.json, [target_summary(target) for target in found], lambda: format_target_list(found))
    return 0


def _probe(args: argparse.Namespace) -> int:
    from toolkit.devices import device_packages, open_device
    from toolkit.probe import format_probe, probe

    facts = open_device(args.device).facts if args.device else probe(device_packages())
    print_result(args.json, facts, lambda: format_probe(facts))
    return 0
