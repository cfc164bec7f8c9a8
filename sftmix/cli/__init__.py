"""The ``sftmix`` command: one module per subcommand, each with ``add_parser(subparsers)`` and ``run(args)``.

``sftmix COMMAND --help`` shows a command's options. Commands that train or load data
(``train``, ``eval``, ``data``, ``dynamics``) take every field of ``ModelArguments``,
``DataArguments`` and ``SFTMixConfig`` as ``--name value`` options, optionally after a
YAML file of such options, e.g. ``sftmix train --n_train 200 --output_dir runs/t``.
Experiment YAMLs (``configs/*.yaml``) run with ``sftmix experiment configs/demo-quick.yaml``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import ablate, data, demo, dynamics, eval, experiment, figures, pretrain, split, train

#: The commands in the order ``sftmix --help`` lists them.
COMMANDS = {module.__name__.rsplit(".", 1)[1]: module for module in
            (demo, pretrain, data, train, eval, dynamics, split, experiment, ablate, figures)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sftmix", description=__doc__.splitlines()[0],
                                     usage="sftmix COMMAND [options]   (sftmix COMMAND --help for its options)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", prog="sftmix")
    for module in COMMANDS.values():
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    if not argv:
        parser.print_help()
        raise SystemExit(0)
    args = parser.parse_args(argv)
    args.parser = parser._subparsers._group_actions[0].choices[args.command]
    args.run(args)


__all__ = ["COMMANDS", "build_parser", "main"]
