"""``dbtui dataset check|prepare --profile``: an option the profile gives is refused, told the --set that gives it."""

from __future__ import annotations


def profile_decides(given: dict[str, tuple[str, str | int | bool | None]]) -> None:
    """With --profile, the profile gives these settings, as training takes them: one given beside it is refused, not
    left unused without a word, and told the --set that gives it instead. ``given``: option → (the profile's key, the
    option's value, None where it was not given; "" where the key holds more than the option said)."""
    from engine.profile.set_text import set_option

    flags = {flag: setting for flag, setting in given.items() if setting[1] is not None}
    if flags:
        from engine.errors import DbtuiError

        it = "it" if len(flags) == 1 else "them"
        sets = " ".join(set_option(key, value) if value != "" else f"--set {key}=…" for key, value in flags.values())
        raise DbtuiError(f"{', '.join(flags)}: with --profile the profile gives {it}, as training takes {it}: change "
                         f"{it} in the profile or with {sets}, or leave out --profile to give {it} here")
