"""``dbtui dataset check|prepare --profile``: an option the profile gives is refused, told the --set that gives it."""

from __future__ import annotations


def profile_decides(given: dict[str, tuple[str, str | int | bool | None]], concepts: int = 1) -> None:
    """With --profile, the profile gives these settings, as training takes them: one given beside it is refused, not
    left unused without a word, and told the --set that gives it instead. ``given``: option → (the profile's key, the
    option's value, None where it was not given; "" where the key holds more than the option said). A concept's key is
    said as concepts.N where ``concepts`` (the number checked) is more than one."""
    from engine.profile.set_text import set_option

    flags = {flag: setting for flag, setting in given.items() if setting[1] is not None}
    if flags:
        from engine.errors import DbtuiError

        it = "it" if len(flags) == 1 else "them"
        sets = " ".join(set_option(key, value) if value != "" else f"--set {key}=…" for key, value in flags.values())
        each = "" if concepts == 1 or not any(key.startswith("concepts.N.") for key, _ in flags.values()) else \
            f" (N: the concept's number, 0 to {concepts - 1}; --concept N checks that one alone)"
        raise DbtuiError(f"{', '.join(flags)}: with --profile the profile gives {it}, as training takes {it}: change "
                         f"{it} in the profile or with {sets}{each}, or leave out --profile to give {it} here")
