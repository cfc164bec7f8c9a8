"""The ``sftmix`` command: one module per subcommand, each with ``add_parser(subparsers)`` and ``run(args)``.

``sftmix COMMAND --help`` shows a command's own options first; ``--help-all`` adds every
``transformers.TrainingArguments`` option. Commands that train or load data (``train``,
``eval``, ``data``, ``dynamics``) take the fields of ``ModelArguments``, ``DataArguments``
and ``SFTMixConfig`` as ``--name value`` options, optionally after a YAML file of such
options, e.g. ``sftmix train --n_train 200 --output_dir runs/t``. Experiment YAMLs
(``configs/*.yaml``) run with ``sftmix experiment configs/demo-quick.yaml``.

Errors the user can fix (bad data, bad option values, missing files, a split that does not
match the data, an unknown model) print one line, ``sftmix: error: ...``, and exit with
code 2. ``--debug`` (anywhere on the command line) or ``SFTMIX_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make multi-threaded torch many times slower when
# other processes share the cores (measured: up to 10x on a loaded 2-core machine). Passive
# waiting costs nothing on an idle machine. OpenMP reads this when torch loads, so it is
# set before any import below can load torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from ..errors import SFTMixUserError  # noqa: E402
from . import ablate, data, demo, dynamics, eval, experiment, figures, pretrain, split, train

#: The commands in the order ``sftmix --help`` lists them.
COMMANDS = {module.__name__.rsplit(".", 1)[1]: module for module in
            (demo, pretrain, data, train, eval, dynamics, split, experiment, ablate, figures)}
#: Exit status of an error the user can fix (as argparse uses for usage errors).
USER_ERROR_EXIT = 2
#: Exceptions reported as one line: user errors, files that are not there, and a Hub that cannot be
#: reached (a Hub name offline: huggingface_hub's and datasets' offline errors are ConnectionErrors).
EXPECTED_ERRORS = (SFTMixUserError, FileNotFoundError, ConnectionError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sftmix", description=__doc__.splitlines()[0],
                                     usage="sftmix [--debug] COMMAND [options]   (sftmix COMMAND --help for its "
                                           "options)")
    parser.add_argument("--debug", action="store_true",
                        help="Show the full traceback of an error (also: SFTMIX_DEBUG=1).")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", prog="sftmix")
    for module in COMMANDS.values():
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def error_line(exc: BaseException) -> str:
    """``sftmix: error: <message>`` on one line."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
        message = f"{exc.filename}: {message}"
    if isinstance(exc, FileNotFoundError):
        message = message.replace("[Errno 2] ", "") + "; check the path"
    if isinstance(exc, ConnectionError):
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        message += ("; HF_HUB_OFFLINE is set, so nothing is downloaded" if offline else "") + \
            ": this needs the Hub (network access), or pass a local file or folder instead of the Hub name"
    return f"sftmix: error: {message}"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SFTMIX_DEBUG", "").lower() not in ("", "0", "false", "no")
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    if not argv:
        parser.print_help()
        raise SystemExit(0)
    args = parser.parse_args(argv)
    args.parser = parser._subparsers._group_actions[0].choices[args.command]
    try:
        args.run(args)
    except EXPECTED_ERRORS as exc:
        if debug:
            raise
        print(error_line(exc), file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT) from None


__all__ = ["COMMANDS", "EXPECTED_ERRORS", "USER_ERROR_EXIT", "build_parser", "error_line", "main"]
