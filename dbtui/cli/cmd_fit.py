"""``dbtui fit PROFILE``: the memory meter's estimate, then a few real steps to measure VRAM, speed, time and cost."""

from __future__ import annotations

import argparse

from dbtui.cli.cards import CARD_HELP, Card, card_mark, card_size, cards_asked, trained_in
from dbtui.cli.common import ExamplesFormatter, add_overrides, header_progress, int_in, price, to_stderr, user_path
from dbtui.cli.estimate_json import Judged, estimate_json, exit_status
from dbtui.cli.meter_status import meter_status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit",
        help="estimate peak VRAM on any machine, then measure it, s/step, the whole run's time and cost with a few real steps",
        description="Estimate the profile's peak GPU memory without a GPU (the memory meter: which cards it fits, and "
        "where the memory goes), then train a few steps in a temporary folder (no samples, no checkpoints, nothing "
        "exported) and report peak VRAM, seconds per step, the whole run's ETA and its cost.",
        epilog="examples:\n  dbtui fit my.toml                       # the estimate, then 10 measured steps\n"
        "  dbtui fit my.toml --estimate-only --card T4 --card 'RTX 4090'   # any machine\n"
        "  dbtui fit my.toml --json --card 24      # the estimate as JSON; trains nothing\n"
        "  dbtui fit my.toml --price-per-hour 2.5  # and the run's cost, in that currency",
        formatter_class=ExamplesFormatter,
    )
    parser.add_argument("profile", type=user_path, help="path to a .toml profile")
    parser.add_argument("--steps", type=int_in(1), default=10,
                        help="steps to measure (default: %(default)s; 2 at least, the fewest with a speed between them)")
    parser.add_argument("--price-per-hour", type=price, default=None, metavar="X", help="this machine's price per hour, in any currency (the cost is said in the same, e.g. "
                        "2.5 for $2.50/hour); it only feeds the cost figure after the measured steps, so --estimate-only "
                        "and --json leave it unused")
    parser.add_argument("--estimate-only", action="store_true", help="print the memory estimate and train nothing; "
                        "exit status 0, or 1 where it misses a card asked with --card (without --card: 0 whatever it "
                        "fits), 2 where no estimate can be made here (nor, where the others fit, at a card's own precision)")
    parser.add_argument("--json", action="store_true", help="implies --estimate-only (trains nothing): the estimate "
                        "printed as one JSON object, its parts in GB and card_verdicts, whether each card judged holds it "
                        "(same exit status)")
    parser.add_argument("--card", action="append", type=card_size, metavar="GB", help=CARD_HELP)
    add_overrides(parser)
    parser.set_defaults(handler=_fit)


# The caching pass holds the encoders, which no saver shrinks, and the VAE's encode of each picture, which shrinks with
# dataset.resolution alone: "which no training setting shrinks" contradicted a saver list naming that setting. Where the
# text encoders' moment is the peak (T5-XXL), that setting leaves it as it is: Flux at 256 px needs what it does at 512.
CACHING_SHRINKS = "which of all training settings only a smaller dataset.resolution shrinks (the VAE encodes the pictures at it)"
CACHING_TEXT = "which no training setting shrinks (its peak is the text encoders' moment, not the VAE's encode)"


def _caching_shrinks(estimate) -> str:
    return CACHING_TEXT if estimate.caching_text else CACHING_SHRINKS


def _caching_decides(estimate) -> str:
    return ("the caching pass before the first step needs the most here: the text encoders beside the VAE "
            f"(T5-XXL for Flux), {_caching_shrinks(estimate)}; only a first run pays it, as a re-run or "
            "resume reads the captions from RUN/cache/")


def _advice(profile, estimate, card_gb: float, fitting_gb: float | None, bf16: bool = True) -> str:
    """What would let the run fit a ``card_gb`` card (``fitting_gb``: the smallest that holds it, if any). The step's
    savers cannot shrink the caching pass: where that pass alone is too large for it, with its encoders already in half
    precision, that is said first, and the savers only when the steps (or the previews) miss the card too: those that
    shrink what misses it. Where even every such saver at once, taking the whole of each part of the estimate it
    shrinks, leaves the steps or the previews too large, no saver is offered: the card is. ``bf16``: whether the card
    trains in it (a T4 is offered no setting that needs it)."""
    from engine.hardware.card_names import smallest_card_gb
    from engine.memory.estimate import GIB, gb_beside
    from engine.memory.cuts import cuts_text, fit_cuts
    from engine.memory.savers import memory_advice

    card = card_gb * GIB
    steps_need = max(estimate.card_need, estimate.sampling_card_need)
    a_card = _a_card(card_gb)
    found = fit_cuts(profile, estimate, card, bf16)
    # None of the cards asked holds it: the smallest sold size that does, where "more than 16 GB" named none.
    rent = fitting_gb or smallest_card_gb(estimate.run_need / GIB)
    bigger = f"rent {rent:g} GB or more" if rent else f"use a card of more than {card_gb:g} GB"

    def settings(too: str = "") -> str:
        what = "the previews" if estimate.sampling_card_need > estimate.card_need else "the steps"
        need = f"{what}{too} need more than {a_card} ({gb_beside(steps_need, (card_gb,))} GB)"
        if found is None:
            return f"{need}, and no setting here brings them under {card_gb:g} GB: {bigger}"
        return f"{need}; to need less: {cuts_text(found, card_gb)}"

    if estimate.caching_card_need <= card:
        return settings()
    if profile.precision.mixed_precision == "no":
        # In fp32 the encoders load in fp32: the savers' mixed precision halves the caching pass too.
        if steps_need > card:
            return settings()
        return (f"the caching pass before the first step needs more than {a_card} ({gb_beside(estimate.caching_card_need, (card_gb,))} GB); "
                f"to need less: {memory_advice(profile, bf16)}")
    if steps_need <= card:
        return _caching_decides(estimate)
    if estimate.caching_card_need >= steps_need:
        return f"{_caching_decides(estimate)}; {settings(' too')}"
    if found is None:
        return settings()  # the card that holds the steps holds the caching pass too
    return (f"{settings()}; the caching pass before the first step needs {estimate.caching_card_need / GIB:.2f} GB "
            f"on the card, {_caching_shrinks(estimate)}")


def _a_card(card: float) -> str:
    """A card as the advice names it: "an 8 GB card", or by the names it was asked by ("the T4's 15 GB"), so that a
    T4's verdict beside a 15 GB card's does not read as that card's."""
    named = [name for name in getattr(card, "names", ()) if name != f"{card:g}"]
    if named:
        return f"the {', '.join(named)}'s {card:g} GB"
    return f"{'an' if f'{card:g}'.startswith(('8', '11', '18')) else 'a'} {card:g} GB card"


def _estimate(profile, cards: tuple[float, ...], say=print) -> Judged | None:
    """The meter's estimate, judged against ``cards`` (GB), as ``say`` is told of its progress; None (with the reason
    said) when it cannot be made here. A card asked about that trains at another precision than this machine (a T4
    without bf16, a 16 GB card with it on a machine without) is judged by a second estimate at its precision, made
    only then: a T4 was told that a bf16 estimate fitted it."""
    say("memory estimate (no GPU needed) …")  # before the meter's imports: torch's took seconds, said by nothing
    from engine.errors import DbtuiError
    from engine.memory import estimate_peak
    from engine.memory.meter import gpu_precision

    requested = profile.precision.mixed_precision
    try:
        # As this machine's GPU trains it (fp16 on one without bf16), which the fit test then measures.
        with meter_status("memory estimate") as measuring:
            estimate = estimate_peak(profile, precision=gpu_precision(requested), measuring=measuring)
    except DbtuiError as error:
        say(f"memory estimate:   not available ({error})")
        return None
    here = gpu_precision(requested) or requested  # without a GPU: the profile's, as a GPU with bf16 trains it
    judged = [(card, trained_in(card, requested, here)) for card in cards]  # a list: a V100 16GB == a 16 GB card as floats
    estimates = {here: estimate}
    for precision in sorted({precision for _, precision in judged} - {here}):
        # A second estimate, as long as the first: said, not left as a silent minute after the first's line.
        say(f"memory estimate in {precision}, for {_labels(tuple(card for card, at in judged if at == precision))} …")
        try:
            with meter_status(f"memory estimate in {precision}") as measuring:
                estimates[precision] = estimate_peak(profile, precision=precision, measuring=measuring)
        except DbtuiError as error:
            say(f"memory estimate in {precision}: not available ({error})")  # fp16 or bf16: cards differ only there
    return Judged(estimate, here, judged, estimates)


def _print_estimate(profile, made: Judged) -> None:
    """The estimate, the cards it fits, what would let it fit those it misses, and where its memory goes."""
    estimate, here, judged, estimates = made.estimate, made.here, made.judged, made.estimates
    requested = profile.precision.mixed_precision
    guessed = " (on an architecture guessed from the model's name: see the first note)" if estimate.guessed_architecture else ""
    marks = [card_mark(card, estimates[precision], None if precision == here else precision == "bf16")
             for card, precision in judged if precision in estimates]
    print(f"memory estimate:   fits {' · '.join(marks)}{guessed}")
    for precision, judged_by in estimates.items():  # each card advised by the estimate it is judged by (a T4's too)
        cards = tuple(card for card, at in judged if at == precision)
        fitting = [card for card in cards if judged_by.fits(card)]
        missed = [card for card in cards if not judged_by.fits(card)]
        if not missed or (fitting and fitting[0] == cards[0]):
            continue
        how = "" if precision == here else f" trained in {precision}"
        if fitting:
            said = f"for a card below {fitting[0]:g} GB{how},"
        else:
            said = f"none of {'these cards' if precision == here else f'the cards{how} ({_labels(cards)})'} holds it;"
        # A card that trains it in fp16, or a card named as one without bf16 whatever the profile asks: a T4.
        without_bf16 = (requested == "bf16" and precision != "bf16") or (isinstance(missed[-1], Card) and not missed[-1].bf16)
        print(f"  {said} {_advice(profile, judged_by, missed[-1], fitting[0] if fitting else None, not without_bf16)}")
    print(f"  {estimate.model}, {estimate.batch} image(s) of {estimate.width}x{estimate.height} per step, "
          f"estimated in {estimate.seconds:.0f} s")
    for line in estimate.breakdown_lines():
        print(f"  {line}")
    for note in estimate.notes:
        print(f"  note: {note}")


def _labels(cards: tuple[float, ...]) -> str:
    return ", ".join(getattr(card, "label", f"{card:g}") for card in cards)


def _steps(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"


def _against_meter(what: str, measured_mb: float, estimated: int) -> str:
    """torch's allocated peak of ``what`` beside the meter's figure for it, and the meter's error."""
    from engine.memory.estimate import GIB

    measured = measured_mb * 2**20
    return (f"{what}: allocated {measured / GIB:.2f} GB; the meter said {estimated / GIB:.2f} GB "
            f"({(estimated - measured) / measured:+.0%})")


def _fit(args: argparse.Namespace) -> int:
    from dbtui.cli.boundary import stops_as_interrupts

    # The test trains here, in a temporary folder that only a clean stop removes (its caches included).
    with stops_as_interrupts():
        return _estimate_and_test(args)


def _estimate_and_test(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.events import StepEnded
    from engine.events import Warning as RunWarning
    from engine.runs.fit import LACKS_STATE, MIN_STEPS, fit_test, launch_note
    from engine.runs.fit_pace import SlowFitHint
    from engine.family_sizes import load_profile_with_family_step
    from engine.runs.folder import run_dir_for
    from engine.runs.folder import check_creatable
    from engine.runs.inputs_check import RunInputsMissingError, check_inputs
    from engine.runs.library_noise import hide_library_progress_bars

    from dbtui.console import PHASE_KINDS, PhaseDisplay, describe
    from dbtui.format import duration

    profile = load_profile_with_family_step(args.profile, args.set)
    args.estimate_only = args.estimate_only or args.json
    if not args.estimate_only:  # the estimate works on any machine, the run's folders or not
        # The fit test trains in a temporary folder; a run folder the real run cannot write would
        # only fail after the measurement, so it is refused first.
        check_creatable(run_dir_for(profile))
        try:
            # A missing folder or caption stops here, not after the estimate and the model's load.
            check_inputs(profile, progress=header_progress(), decode_progress=header_progress(what="decoding images"))
        except RunInputsMissingError as missing:
            # Typed before renting, where the images are not: the estimate that was wanted needs none of it.
            raise RunInputsMissingError(f"{missing} For the memory estimate alone, which trains nothing and needs no "
                                        "images, add --estimate-only.") from None
    if args.estimate_only and args.price_per_hour is not None:
        # The cost is the measured s/step times the steps: a renter's --price-per-hour on a laptop got no word at all.
        to_stderr("note: --price-per-hour gives no cost here: the cost comes from the seconds a step takes, which only "
                   "the steps measure; run the same dbtui fit without --estimate-only or --json on the GPU you rent")
    cards = cards_asked(args.card)
    if args.json:
        return estimate_json(_estimate(profile, cards, say=to_stderr), asked=bool(args.card))
    made = _estimate(profile, cards, say=lambda text: print(text, flush=True))
    if made is not None:
        _print_estimate(profile, made)
    if args.estimate_only:
        return exit_status(made, asked=bool(args.card))
    estimate = made.estimate if made is not None else None

    phases = PhaseDisplay()  # the set-up phases' counts, as the wizard's fit test shows them: a bar, or a tenth a line
    def progress(event) -> None:
        if not on_gpu and (hint := slow(event)):
            print(f"  note: {hint}", flush=True)
        if isinstance(event, StepEnded):
            print(f"  step {event.step}: loss {event.loss:.4f}", flush=True)
        elif isinstance(event, RunWarning):
            print(f"  {describe(event)}", flush=True)
        elif event.kind in PHASE_KINDS and event.phase != "training":  # the steps have their own lines
            phases(event)  # a set-up phase's count: caching a tiny Flux's images on a CPU takes minutes

    steps = max(MIN_STEPS, args.steps)
    if steps > args.steps:
        print(f"--steps {args.steps}: the fit test measures {steps}, the fewest with a speed between them", flush=True)
    run_steps = profile.training.max_train_steps
    if run_steps == 1:
        steps = 1
        print("the run has 1 step: the fit test trains it whole, and its export is written to a temporary folder", flush=True)
    elif run_steps and run_steps <= steps:
        steps = run_steps - 1
        first = "its first step" if steps == 1 else f"the first {steps} steps"
        print(f"the run has only {run_steps} steps: the fit test measures {first} (the last would end the run and export "
              "it)", flush=True)
    launched = launch_note(profile)
    if launched:
        print(launched, flush=True)
    print(f"fit test: {_steps(steps)} of {args.profile}", flush=True)
    hide_library_progress_bars()
    import torch  # here, not above: a second's import before the estimate's first line was a silent wait

    on_gpu = torch.cuda.is_available()
    slow = SlowFitHint(steps, profile.dataset.resolution, "--set dataset.resolution", estimate_shown=made is not None)
    with phases:
        tested = fit_test(profile, steps, progress, price_per_hour=args.price_per_hour)
    result = dataclasses.replace(tested, memory_estimate=estimate)
    vram = f"{result.peak_vram_mb / 1024:.2f} GB" if result.peak_vram_mb is not None else "not measured (no CUDA)"
    print(f"peak VRAM (torch): {vram}")
    if result.lacks_optimizer_state:
        print(f"  {LACKS_STATE}" + ("; the meter's estimate counts it" if estimate is not None else ""))
    if result.peak_vram_allocated_mb is not None and estimate is not None and not launched:
        print("  " + _against_meter("steps", result.peak_vram_allocated_mb, estimate.peak_allocated))
        if result.setup_vram_allocated_mb and estimate.caching:
            print("  " + _against_meter("caching pass", result.setup_vram_allocated_mb, estimate.caching))
    if result.peak_rss_mb is not None:
        print(f"peak RAM:          {result.peak_rss_mb / 1024:.2f} GB")
    print(f"setup:             {duration(result.setup_s)}")
    print(f"speed:             {result.s_per_step:.3f} s/step")
    print(f"whole run:         {_steps(result.total_steps)}, about {duration(result.eta_s)} "
          "(set-up and steps; previews, scoring rounds and exports come on top)")
    if result.est_cost is not None:
        print(f"cost:              about {result.est_cost:.2f} at {args.price_per_hour}/hour")
    return 0
