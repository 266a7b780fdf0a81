"""``dbtui hardware``: what this machine can train, for headless machines."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, NoReturn

from dbtui.cli.cards import CARD_HELP, Card, card_mark, card_size, cards_asked
from dbtui.cli.common import ExamplesFormatter, add_overrides, to_stderr, user_path
from dbtui.cli.estimate_json import card_key, need_json
from dbtui.family_guess_words import guessed_from_name
from dbtui.output_disk import output_dir_is_file
from engine.errors import DbtuiError
from engine.hardware.machine import FAMILIES  # standard library only at import: --help stays fast

if TYPE_CHECKING:
    from engine.hardware.machine import Hardware
    from engine.profile import Profile
    from engine.profile.problems import Problem
    from engine.memory.estimate import MemoryEstimate
    from engine.memory.preset_table import PresetEstimate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hardware",
        help="probe GPUs, libraries, RAM and disk, and recommend a preset",
        description="Probe GPUs (VRAM, compute capability, bf16), driver, CUDA and torch, bitsandbytes, "
        "xformers, RAM and free disk, then say in words what this machine can train. The advice is for "
        "SD1.x unless --family or --profile names SD2.x, SDXL or Flux. Each preset of the family is listed with the "
        "GPU memory it needs by the memory meter and the cards it fits.",
        epilog="examples:\n  dbtui hardware                     # this machine, SD1.x presets\n"
        "  # SDXL presets, and the one to pick on each card to rent:\n"
        "  dbtui hardware --family sdxl --card 24 --card T4\n"
        "  # for its model, as it trains (prior preservation or not), with free disk\n"
        "  # measured at its saving.output_dir:\n"
        "  dbtui hardware --profile my.toml\n"
        "  # which preset if it trained at 768 px:\n"
        "  dbtui hardware --profile my.toml --set dataset.resolution=768\n"
        "  dbtui hardware --json --card 16 | jq '.presets | map_values(.fits)'\n\n"
        "--family and --profile go one at a time: a profile's model decides its family; --set changes\n"
        "a value of the profile, as `dbtui fit` takes it, and needs --profile.",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("--output-dir", metavar="DIR", type=user_path, help="where runs will be written: free disk is measured there (or at "
                        "its nearest folder that exists; default: with --profile, its saving.output_dir, else here, "
                        "the folder dbtui runs in)")
    parser.add_argument("--json", action="store_true", help="print the probe as JSON (\"family\": sd, sd2, sdxl or flux; "
                        "\"figures_at_px\": the size the SD presets' figures were measured at, \"trains_at_px\": the "
                        "profile's dataset.resolution); each preset's \"fits\" says by card "
                        "whether it fits, \"run_card_gb_by_card\" the GB it is judged by there (a T4's in fp16), and "
                        "\"judged_with_prior\" whether that was judged with prior preservation "
                        "(\"fits_with_prior\" is the same, its old name, kept for scripts: read judged_with_prior); "
                        "\"model_problems\": why the profile's model cannot load, where it cannot (the advice keys are "
                        "then null or empty)")
    parser.add_argument("--card", action="append", type=card_size, metavar="GB",
                        help=CARD_HELP + "; the advice then also names the preset to pick on each of those cards")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--family", choices=FAMILIES, metavar="FAMILY",
                       help="advice for this model family: sd (SD1.x, the default), sd2 (SD2.x), "
                       "sdxl or flux; sd-768, sd-1024, sd2-768 (as SD2.x-v trains) and sd2-1024 judge the SD presets at that "
                       "size, which they keep")
    which.add_argument("--profile", type=user_path, metavar="PROFILE", help="advice for the model this profile trains "
                       "(model.pretrained; one not on this machine by the family its name says); a model here that "
                       "cannot load (a damaged file, a folder missing a part), a web address or a Windows path "
                       "(C:\\models\\x.safetensors) is said as `dbtui validate` says it, after the machine's facts, with "
                       "no advice, and exit status 2")
    add_overrides(parser)  # with --profile: the advice as the run started with these --set values trains
    parser.set_defaults(handler=_hardware)


def _hardware(args: argparse.Namespace) -> int:
    from engine.hardware.machine import card_hardware, card_verdict, probe, too_small, unmeasured_text, verdict
    from engine.memory.preset_table import base_family, measured_at, profile_preset

    family, family_note, profile, output_dir = args.family or "sd", None, None, args.output_dir or "."
    beyond = None  # the largest size the presets were measured at, where the profile trains above it
    unloadable = []  # what stops the profile's model from loading: no advice is given for it
    if args.set and not args.profile:  # --family or this machine alone: no profile value for --set to change
        from dbtui.cli.profile_decides import SET_NEEDS_PROFILE

        raise DbtuiError(SET_NEEDS_PROFILE)
    if args.profile:
        from engine.family_sizes import load_profile_with_family_step

        profile = load_profile_with_family_step(args.profile, args.set)
        # Its runs go there: the disk of the folder dbtui ran in was measured, another disk where the two differ.
        output_dir = args.output_dir or profile.saving.output_dir
    said = "--output-dir" if args.output_dir else f"{args.profile}'s saving.output_dir"
    if problem := output_dir_is_file(output_dir, said):
        raise DbtuiError(problem)
    # On stderr, as `fit --json` says its estimate: the table or the JSON stays the report alone. Importing torch to ask
    # CUDA took seconds before the table's first line; the model's checks come after it, their imports a second more.
    to_stderr("probing this machine's GPUs, libraries, RAM and disk …")
    hardware = probe(output_dir)
    if profile is not None:
        from engine.model_problems import model_load_problems

        unloadable = model_load_problems(profile.model)
        if not unloadable:
            family, beyond, family_note = _profile_family(args, profile)
    if unloadable:
        _refuse_unloadable(args, hardware, profile, unloadable)
    # Every preset, and the advice, as the profile trains: with prior preservation or without (a preset leaves it as
    # the profile has it). With it on for all, flux-lora-24gb.toml (prior off) read "16 GB ✗" where `dbtui fit` and
    # its comment say a 16 GB card holds it, and a 16 GB card was told to pick flux-lora-16gb.
    trains_prior = profile is None or profile.prior.enabled
    sentence, preset = verdict(hardware, family, trains_prior)
    if beyond is not None and hardware.gpus:  # no figure at its size: no preset is picked by a smaller size's
        preset = None
    bf16 = hardware.gpus[0].bf16 if hardware.gpus else True  # without a GPU: as a GPU with bf16 trains them
    estimates = _family_estimates(family, bf16)
    own = profile_preset(profile, estimates) if profile is not None else None
    cards = cards_asked(args.card)
    # The advice for each card asked about: the card to rent is seldom the one this machine has.
    card_advice = [(card, *card_verdict(card, family, card.bf16, trains_prior)) for card in cards] if args.card else []
    # A card too small for even the family's smallest preset is told so, not told to pick that preset.
    small = preset is not None and too_small(hardware, preset, family, trains_prior)
    if beyond is not None:
        card_advice = [(card, said, None) for card, said, _ in card_advice]
    small_cards = [best is not None and too_small(card_hardware(card, card.bf16), best, family, trains_prior)
                   for card, _, best in card_advice]
    if args.json:
        presets = {name: _as_json(row, bf16, cards, trains_prior) for name, row in estimates.items()}
        by_card = {card.key: {"verdict": said, "preset": best, "fits": best is not None and not too}
                   for (card, said, best), too in zip(card_advice, small_cards)}
        # The family as profiles' models have it, and apart, the size the SD presets' figures were measured at ("sd2-768"
        # named no family); "preset": null where the profile trains above every size measured.
        print(json.dumps({**hardware.to_dict(), "family": base_family(family), "figures_at_px": measured_at(family),
                          "trains_at_px": None if profile is None else profile.dataset.resolution,
                          "family_note": family_note, "verdict": sentence,
                          "preset": preset, "preset_fits": preset is not None and not small, "card_verdicts": by_card,
                          "profile_preset": own, "presets": presets, "model_problems": []},
                         indent=2))
        return 0
    from rich.markup import escape

    from dbtui.cli.unpadded import unpadded_console
    from dbtui.widgets.hardware_table import hardware_table

    console = unpadded_console()
    console.print(hardware_table(hardware))
    if family_note:
        console.print(f"\n{escape(family_note)}")
    unmeasured = None if beyond is None or profile is None else unmeasured_text(beyond, profile.dataset.resolution)
    console.print(f"\n[b]{sentence}[/b]\nRecommended preset: {_recommended(preset, small, family, trains_prior, unmeasured)}")
    for (card, said, best), too in zip(card_advice, small_cards):
        console.print(f"\n[b]--card {escape(card.label)}:[/b] {escape(said)}\nRecommended preset for it: "
                      f"{_recommended(best, too, family, trains_prior, unmeasured)}")
    if estimates:
        console.print()
        # No row marked as the one to pick where even the smallest does not fit this GPU.
        console.print(_estimates_table(estimates, None if small else preset, bf16, console.width, cards, own,
                                       trains_prior))
    return 0


def _profile_family(args: argparse.Namespace, profile: Profile) -> tuple[str, int | None, str | None]:
    """(the family the profile's model is advised as, the largest size the presets were measured at where the profile
    trains above it, the note saying how its family was read or what its size leaves unmeasured)."""
    from engine.hardware.machine import sized_family, unmeasured_size
    from engine.model_info import advice_family

    source, resolution = profile.model.pretrained, profile.dataset.resolution
    # The SD presets keep the profile's size: an SD1.5 one at 1024 px is judged by their figures there.
    family = sized_family(advice_family(source), resolution)
    beyond = unmeasured_size(family, resolution)
    notes = [guessed_from_name(source, family), _other_size(args, resolution, family, beyond)]
    return family, beyond, " ".join(note for note in notes if note) or None


# --json's advice where the profile's model cannot load: the keys a script reads, none of them advising.
NO_ADVICE = {"family": None, "figures_at_px": None, "trains_at_px": None, "family_note": None, "verdict": None, "preset": None,
             "preset_fits": False, "card_verdicts": {}, "profile_preset": None, "presets": {}}


def _refuse_unloadable(args: argparse.Namespace, hardware: Hardware, profile: Profile, problems: list[Problem]) -> NoReturn:
    """The machine's facts, then the model's problems as `dbtui validate` says them (exit status 2): a damaged file
    was advised SD1.5's presets as a model "whose files do not say its family", and the command exited 0."""
    from engine.profile import ProfileError, located

    said = located(problems, args.profile, args.set)
    if args.json:
        print(json.dumps({**hardware.to_dict(), **NO_ADVICE, "trains_at_px": profile.dataset.resolution,
                          "model_problems": [str(problem) for problem in said]}, indent=2))
    else:
        from dbtui.cli.unpadded import unpadded_console
        from dbtui.widgets.hardware_table import hardware_table

        console = unpadded_console()
        console.print(hardware_table(hardware))
        console.print("\nNo preset is advised: the profile's model cannot load (its problem follows).")
    raise ProfileError(said)


def _recommended(preset: str | None, small: bool, family: str, prior: bool = True, unmeasured: str | None = None) -> str:
    """The preset to pick, labelled by ``family``'s cards (as the profile trains: ``prior``), in markup; none where even
    the family's smallest does not fit the card, or where no preset was measured at the profile's size (``unmeasured``
    says so)."""
    from dbtui.presets import PRESET_NAMES, preset_label

    if preset is None:
        return f"none: {unmeasured} (see `dbtui fit` above)"

    name = f"[b]{preset_label(preset, family, prior) if preset in PRESET_NAMES else preset}[/b] ({preset})"
    return f"none, as even the smallest, {name}, does not fit" if small else name


def _prior_said(estimates: dict, bf16: bool, trains_prior: bool) -> str:
    """How the rows are judged: with prior preservation, or as a profile without it trains, but for the rows whose
    figure without it was not measured (without bf16: the fp16 one with it stands for both)."""
    if trains_prior:
        return "with prior preservation"
    measured = [name for name, row in estimates.items() if row.with_prior(bf16, False)]
    if not measured:
        return "without prior preservation, as the profile trains"
    if len(measured) == len(estimates):
        return "with prior preservation, the only figures measured in fp16 (the profile trains without it)"
    return (f"without prior preservation, as the profile trains, but {', '.join(measured)} with it, the only figure "
            "measured in fp16")


def _card_prior_said(card: Card | float, estimates: dict, bf16: bool, trains_prior: bool) -> str | None:
    """Where a card asked trains otherwise (a T4 on a bf16 machine), the line naming the rows whose mark for it is
    judged with prior preservation where the rows are not (its marks were read as without), as `--json`'s
    "judged_with_prior" has them: all its marks were said so where some only were (SD's lora has an fp16 figure
    without it); None where none is. A default card (a size alone) trains as this machine does."""
    if not isinstance(card, Card) or card.bf16 or not bf16:
        return None
    judged_with = [name for name, row in estimates.items() if row.with_prior(False, trains_prior) > row.with_prior(bf16, trains_prior)]
    if not judged_with:
        return None
    if len(judged_with) == len(estimates):
        return f"{card.label} (no bf16): judged with prior preservation, the only figure measured in fp16 (more than this profile needs)"
    return (f"{card.label} (no bf16): judged without prior preservation, as the profile trains, but {', '.join(judged_with)} "
            "with it, the only figure measured in fp16 (more than this profile needs)")


# A terminal's usual width: from it, each preset's row of the default cards' marks stays on one line.
WHOLE_ROWS_FROM = 80
# Whose figures the SD presets' rows are, by the model they were measured on (engine/memory/preset_table.py).
SD_FIGURES = {"builtin:sd15-random": "SD1.5's", "stabilityai/stable-diffusion-2-1-base": "SD2.1-base's",
              "stabilityai/stable-diffusion-2-1": "SD2.1-v's"}


def _other_size(args: argparse.Namespace, resolution: int, family: str, beyond: int | None) -> str | None:
    """Where the SD presets, which keep a profile's resolution, train this profile above every size their figures were
    measured at (``beyond``: the largest), the sentence that says so and names the `dbtui fit` that estimates it: an
    SD1.5 profile at 1024 px was picked full-8bit for a 12 GB card by its figure at 512 px."""
    import shlex

    from engine.memory.preset_table import ROW_SETS

    if beyond is None:
        return None
    # Each card as it was first asked, once: `--card T4 --card T4` was told to run `dbtui fit … --card T4 --card T4`.
    names = dict.fromkeys(name for card in args.card or () for name in card.names)
    command = ["dbtui", "fit", args.profile, "--estimate-only", *(arg for name in names for arg in ("--card", name)),
               *(arg for item in args.set for arg in ("--set", item))]
    from engine.hardware.machine import unmeasured_text

    said = unmeasured_text(beyond, resolution)
    return (f"{said[:1].upper()}{said[1:]}, which the SD presets keep: the figures below are "
            f"{SD_FIGURES[ROW_SETS[family].pretrained]} at {beyond} px, less than it needs, so none is recommended; "
            f"for this profile's own, run `{shlex.join(command)}`.")


def _family_estimates(family: str, bf16: bool) -> dict:
    """The memory meter's stored estimates of the family's presets, smallest first."""
    from engine.hardware.machine import FAMILY_PRESETS
    from engine.memory.preset_table import load_preset_estimates

    table = load_preset_estimates(family=family)
    return {name: table[name] for name in FAMILY_PRESETS[family] if name in table}


def _card_need(row: PresetEstimate, bf16: bool, card: float, prior: bool = True) -> tuple[MemoryEstimate, str]:
    """(the preset's estimate as ``card`` trains it, what its mark says of it): a card asked about by name trains with
    or without bf16 as that card does (a T4 in fp16, needing more), whatever this machine has."""
    own = getattr(card, "bf16", bf16)
    need = row.need(own, prior)
    return need, card_mark(card, need, None if own == bf16 else own)


def _card_marks(row: PresetEstimate, bf16: bool, cards: tuple[float, ...], prior: bool = True) -> list[str]:
    """The estimate's ``fit_line`` under the table's "fits", each card judged as it trains the preset (``_card_need``),
    "· " before all but the first: the column wraps between them."""
    marks = [_card_need(row, bf16, card, prior)[1] for card in cards]
    return marks[:1] + [f"· {mark}" for mark in marks[1:]]


def _as_json(row: PresetEstimate, bf16: bool, cards: tuple[float, ...], prior: bool = True) -> dict:
    """The row's figures and fits, with prior preservation unless ``prior`` is False (a profile without it); "prior"
    and "judged_with_prior" (by card; "fits_with_prior" is its old name) say what each is judged with: without bf16
    only the fp16 figure with it was measured."""
    from engine.memory.estimate import GIB

    need, alone = row.need(bf16, prior), row.no_prior
    by_card = {card_key(card): _card_need(row, bf16, card, prior)[0] for card in cards}
    fits = {card_key(card): by_card[card_key(card)].fits(card) for card in cards}
    # A T4 asked on a bf16 machine is judged by that fp16 figure: "prior": false beside it read as without.
    with_prior = {card_key(card): row.with_prior(getattr(card, "bf16", bf16), prior) for card in cards}
    # run_card_gb is what "fits" judges (the largest moment); card_gb stays the steps' alone, as it always was.
    return {**need_json(need), "run_card_gb_without_prior": round(alone.run_need / GIB, 2), "card_gb_without_prior": round(alone.card_need / GIB, 2),
            # "fits_with_prior" read as "fits, with prior": the name that says what it is stands beside it, which is
            # kept for the scripts that read it.
            "fits": fits, "judged_with_prior": with_prior, "fits_with_prior": with_prior,
            # The figure each card is judged by, as the table prints it: a T4's 9.9 GB for full-8bit (fp16, fp32
            # weights) was in the text alone, beside the row's 5.2 GB in bf16.
            "run_card_gb_by_card": {key: round(card_need.run_need / GIB, 2) for key, card_need in by_card.items()},
            "prior": row.with_prior(bf16, prior), "model": need.model,
            "resolution": [need.width, need.height]}


def _estimates_table(estimates: dict, recommended: str | None, bf16: bool, width: int, cards: tuple[float, ...],
                     own: str | None, trains_prior: bool = True):
    """A heading, then one row a preset (names, not labels: a row fits 80 columns): what the card must hold for the
    whole run (the largest of the steps, the caching pass and the previews, as the fits judge), which cards fit, each
    judged with prior preservation as the profile trains (``trains_prior``) where that was measured. ``own``: the
    profile's preset, marked "*"."""
    from rich.columns import Columns
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    from engine.memory.estimate import GIB, gb_beside

    needs = {name: row.need(bf16, trains_prior) for name, row in estimates.items()}
    first = next(iter(estimates.values())).need(bf16)
    how = _prior_said(estimates, bf16, trains_prior) + ("" if bf16 else ", in fp16 (this GPU has no bf16)")
    # Presets of one size say it once; Flux's differ in size, so each row says its own.
    sizes = {need.width for need in needs.values()}
    table = Table(box=None, pad_edge=False)
    marks = {name: _card_marks(row, bf16, cards, trains_prior) for name, row in estimates.items()}
    if width >= WHOLE_ROWS_FROM:
        # The name and its marks whole: with a long card's mark beside it, "flux-lora-24gb (1024 px) *" kept its "◂"
        # on a line of its own. The card marks wrap between cards where a row is wider than the terminal.
        table.add_column("preset", no_wrap=True)
    else:
        # Below, the name folds and the card marks wrap between cards; the size, the point of the table, never. The
        # name folds to leave the size and the widest card mark their room (4: the padding between the columns): Rich
        # narrows the widest columns first, and at 30 columns split "8 GB" from its ✗.
        widest_mark = max(len(mark) for row in marks.values() for mark in row)
        table.add_column("preset", overflow="fold", max_width=max(6, width - len("whole run") - widest_mark - 4))
    table.add_column("whole run", justify="right", no_wrap=True, min_width=len("99.9 GB"))
    table.add_column("fits")
    for name, need in needs.items():
        # Beside the cards judged by this figure (not a T4's, by its fp16 one), it never reads as equal to one it misses.
        judged = tuple(card for card in cards if _card_need(estimates[name], bf16, card, trains_prior)[0] is need)
        label = (name if len(sizes) == 1 else f"{name} ({need.width} px)") + (" *" if name == own else "")
        table.add_row(f"[b]{label}[/b] ◂" if name == recommended else label, f"{gb_beside(need.run_need, judged)} GB",
                      Columns(marks[name], padding=(0, 1)))
    size = f"{first.width} px, " if len(sizes) == 1 else ""
    # The caching pass before the first step (the encoders on the GPU) and the previews between steps (the VAE
    # back beside the denoiser and the optimizer's state), where they need more than the steps.
    moments = [f"{name}: {gb_beside(need.caching_card_need, cards)} GB on the card while the caches fill, before the "
               f"first step (the steps: {need.card_need / GIB:.1f} GB)"
               for name, need in needs.items() if need.caching_card_need > need.card_need]
    moments += [f"{name}: {gb_beside(need.sampling_card_need, cards)} GB on the card while previews are generated "
                f"(the steps: {need.card_need / GIB:.1f} GB)"
                for name, need in needs.items() if need.sampling_card_need > need.card_need]
    moments += [escape(said) for card in cards if (said := _card_prior_said(card, estimates, bf16, trains_prior))]
    if own is not None:
        moments.append("* this profile's own settings")
    # Rich markup would take Flux's "[dev]" for a style.
    return Group(f"GPU memory by the memory meter ({escape(first.model)}, {size}batch 1, {how}):", table, *moments)
