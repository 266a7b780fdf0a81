"""The ``dbtui`` command. Imports stay lazy so ``dbtui --help`` starts fast without torch.

Each sub-command lives in its own module with ``register(subparsers)``; add new ones to
``COMMANDS``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys

from dbtui.cli.boundary import run_guarded
from dbtui.cli.common import ExamplesFormatter
from dbtui.cli.suggest import SuggestingParser, unknown_hint
from dbtui.cli.version_text import PrintVersion

COMMANDS = [
    "dbtui.cli.cmd_validate",
    "dbtui.cli.cmd_run",
    "dbtui.cli.cmd_demo",
    "dbtui.cli.cmd_runs",
    "dbtui.cli.cmd_export",
    "dbtui.cli.cmd_report",
    "dbtui.cli.cmd_dataset",
    "dbtui.cli.cmd_hardware",
    "dbtui.cli.cmd_fit",
    "dbtui.cli.cmd_serve",
    "dbtui.cli.cmd_convert",
]

DESCRIPTION = """\
DreamBooth fine-tuning of Stable Diffusion 1.x, 2.x and XL, and Flux.1, from a terminal.

Run `dbtui` with no command to open the wizard. Everything you choose is saved as a TOML
profile; `dbtui run PROFILE` re-runs it headless (nohup, tmux, CI).
"""

EPILOG = """\
examples:
  dbtui demo                                 # train a tiny model, no GPU needed
  dbtui validate profiles/sd15-person.toml   # list every problem in a profile
  dbtui run my.toml --set optimizer.learning_rate=1e-6
"""


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="dbtui", description=DESCRIPTION, epilog=EPILOG, formatter_class=ExamplesFormatter
    )
    parser.add_argument("--version", action=PrintVersion)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def _reached(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The innermost sub-command parser ``argv`` names (``dbtui dataset caption`` …). argparse reports an
    unknown option from the top-level parser; it has no public way to name the sub-command's."""
    for token in argv:
        commands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if commands is None:
            break
        parser = commands.choices.get(token, parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from engine.runs.library_noise import hold_back_library_noise
    from engine.support.deferred_import import defer_seldom_used

    hold_back_library_noise()  # every command, not only training, may load peft and so bitsandbytes
    # As in the trainer's process: `export`, `convert` and `fit` load diffusers, whose import of bitsandbytes compiles kernels.
    defer_seldom_used()
    from_command_line = argv is None  # not a test or a caller that goes on in this process
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # The command's own usage, which lists the options it does take (exits with status 2).
        reached = _reached(parser, argv)
        reached.error(f"unrecognized arguments: {' '.join(unknown)}{unknown_hint(reached, unknown)}")
    if getattr(args, "set", None):
        from engine.profile.overrides import repeated_overrides

        for said in repeated_overrides(args.set):
            print(f"dbtui: warning: {said}", file=sys.stderr)
    handler = getattr(args, "handler", None)
    if handler is None:
        from dbtui.cli.cmd_wizard import run_wizard

        handler = run_wizard
    code = run_guarded(lambda: handler(args), argv)
    if from_command_line:
        # The process ends here: torch and transformers (read for a tokenizer, as `dataset check --profile` does) leave
        # millions of objects that the interpreter's last garbage collection walked for seconds after the output,
        # with nothing shown. Frozen, they are left to the exit, which frees the memory all at once.
        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
