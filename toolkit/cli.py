"""`edgesmith` command line: run, search, check, bench, explain, report, select, targets, device probe.

Each command lives in a small module (cli_run, cli_artifact, cli_results, cli_info) that
registers its parser; this one owns start-up, logging and the exit codes every command shares.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from importlib import metadata
from typing import Any, Sequence

from toolkit import cli_artifact, cli_explain, cli_info, cli_results, cli_run, cli_search
from toolkit.cli_log import configure_logging
from toolkit.cli_options import discard_stdout
from toolkit.errors import EdgesmithError, first_line, write_failure

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_CANNOT_WRITE = 4
EXIT_INTERRUPTED = 130
EXIT_CODES = """exit codes:
  0    done
  1    a negative answer: `check` found the model incompatible, `select` found nothing within the budget
  2    bad input (a file, a flag, a dataset): one line names the problem and the fix
  3    internal error: a bug in edgesmith; --debug shows the traceback
  4    cannot write the output (disk full, quota, read-only, permission): one line names the path and the fix
  130  interrupted (Ctrl-C, SIGTERM): finished stages are kept, the same command resumes"""
REPORT_BUG = "please report this at the project's issue tracker with the command you ran; --debug shows the traceback"


def version() -> str:
    """The installed package's version (what `pip show edgesmith` says)."""
    try:
        return metadata.version("edgesmith")
    except metadata.PackageNotFoundError:  # a source tree on PYTHONPATH without `pip install`
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The `edgesmith` parser; -q/-v/--debug work before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks and TensorFlow's native logs")
    loudness = common.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", dest="log_level", action="store_const", const=logging.WARNING,
                          default=argparse.SUPPRESS, help="no progress messages on stderr, only warnings and errors")
    loudness.add_argument("-v", "--verbose", dest="log_level", action="store_const", const=logging.DEBUG,
                          default=argparse.SUPPRESS, help="debug messages on stderr as well")
    parser = argparse.ArgumentParser(
        prog="edgesmith", parents=[common], epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compress, convert, check and benchmark Keras models for edge targets. "
                    "Results go to stdout, progress and errors to stderr.",
    )
    parser.add_argument("--version", action="version", version=f"edgesmith {version()}")
    commands = parser.add_subparsers(dest="command", required=True, help="`edgesmith COMMAND --help` shows its options")
    for module in (cli_run, cli_search, cli_artifact, cli_explain, cli_results, cli_info):
        module.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (see EXIT_CODES)."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    configure_logging(getattr(args, "log_level", logging.INFO))
    _hide_gpus()
    logging.getLogger("toolkit.cli").debug("edgesmith %s, Python %s, command: %s", version(), sys.version.split()[0], args.command)
    _INTERRUPTS.clear()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupt)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return _interrupted()
    except EdgesmithError as error:
        if _INTERRUPTS:  # an interrupt inside a library's import or C code can surface as another error
            return _interrupted()
        if debug:
            raise
        print(f"edgesmith: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader went away (`| head`): entry_point ends quietly
        raise
    except Exception as error:  # anything else is our bug: one line, not a traceback
        if _INTERRUPTS:
            return _interrupted()
        if debug:
            raise
        cannot_write = write_failure(error) if isinstance(error, OSError) else None
        if cannot_write:  # disk full, read-only, permission: the environment, not a bug
            print(f"edgesmith: error: {cannot_write}", file=sys.stderr)
            return EXIT_CANNOT_WRITE
        print(f"edgesmith: internal error: {type(error).__name__}: {first_line(error)} — {REPORT_BUG}", file=sys.stderr)
        return EXIT_INTERNAL


def _hide_gpus() -> None:
    """The command runs everything on the CPU: TensorFlow's GPU kernels are not deterministic
    (same seed → same bytes needs CPU kernels) and every latency here is a CPU figure. Set
    CUDA_VISIBLE_DEVICES yourself to override; importing the package never touches it."""
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


_INTERRUPTS: list[int] = []  # signals received: the exit is "interrupted" whatever error they caused


def _raise_interrupt(signum: int, frame: Any) -> None:
    _INTERRUPTS.append(signum)
    raise KeyboardInterrupt


def _interrupted() -> int:
    print("edgesmith: interrupted — finished stages are kept; run the same command to resume", file=sys.stderr)
    return EXIT_INTERRUPTED


def _silence_native_logs() -> None:
    """TensorFlow's C++ layers (absl, oneDNN, CUDA probing, the MLIR quantizer) write straight
    to file descriptor 2, bypassing Python. Point that descriptor at /dev/null and keep Python's
    own stderr — our messages and errors — on the original terminal. `--debug` shows it all."""
    try:
        original = os.dup(2)
    except OSError:
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(original, "w", buffering=1, encoding="utf-8", errors="replace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def entry_point() -> None:
    """The installed command: like main(), plus TensorFlow's native log noise silenced."""
    if "--debug" not in sys.argv:
        _silence_native_logs()
    code = None
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `edgesmith check m.tflite --target cpu | head`
        discard_stdout()
        # the command's own verdict when it had one (check: 1 for incompatible), else the
        # shell's code for a writer whose reader went away
        code = 128 + signal.SIGPIPE if code is None else code
    sys.exit(code)
