"""A close match for a misspelt sub-command, choice or option. argparse on Python < 3.14 only lists the choices
(and for an unknown option, its usage); 3.14's ``suggest_on_error`` covers choices alone."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable

# Words a user may type for something dbtui reaches another way.
ELSEWHERE = {"wizard": "run `dbtui` with no command to open the wizard"}


# An option a command does not take that a user brings from another, with what that command does instead: its close
# match (resume's --detach, export's --step) would lead them astray.
OPTION_ELSEWHERE = {
    ("dbtui resume", "--set"): "resume trains the run's own profile.toml as it is; to change a setting, "
                               "`dbtui run PROFILE --resume --set KEY=VALUE`",
    ("dbtui export", "--set"): "export reads RUN/profile.toml: edit its saving.export there to choose the formats",
}


def close_match(word: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` that ``word`` most likely misspells, or None."""
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_hint(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """'; did you mean --detach?' for each unknown option that is close to one ``parser`` takes."""
    options = [option for action in parser._actions for option in action.option_strings]
    typed = [token.split("=", 1)[0] for token in unknown if token.startswith("--")]
    elsewhere = [OPTION_ELSEWHERE[parser.prog, token] for token in typed if (parser.prog, token) in OPTION_ELSEWHERE]
    if elsewhere:
        return "; " + "; ".join(elsewhere)
    matches = [(token, match) for token in typed if (match := close_match(token, options))]
    if not matches:
        return ""
    if len(typed) == 1:
        return f"; did you mean {matches[0][1]}?"
    return "; did you mean " + ", ".join(f"{match} for {token}" for token, match in matches) + "?"


class SuggestingParser(argparse.ArgumentParser):
    """An ArgumentParser whose 'invalid choice' error names the closest choice. Sub-command parsers are made of
    their parent's class, so setting it on the top-level parser covers every command."""

    def _check_value(self, action: argparse.Action, value: object) -> None:
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as error:
            word = str(value)
            match = close_match(word, map(str, action.choices or ()))
            hint = ELSEWHERE.get(word) or (f"did you mean '{match}'?" if match else None)
            if hint is None:
                raise
            raise argparse.ArgumentError(action, f"{error.message}; {hint}") from None
