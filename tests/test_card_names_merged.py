"""`dbtui fit P --card T4 --card t4` judged one card labelled "T4, t4": one name asked twice in two cases."""

from __future__ import annotations

from dbtui.cli.cards import card_size, cards_asked


def test_one_card_name_in_two_cases_or_spacings_is_one_name() -> None:
    [card] = cards_asked([card_size("T4"), card_size("t4"), card_size("tesla  t4"), card_size("Tesla T4")])
    assert card.label == "T4, tesla  t4" and not card.bf16  # another name of the same card is still said
    [card] = cards_asked([card_size("RTX 4090"), card_size("rtx 4090"), card_size("24")])
    assert card.label == "RTX 4090, 24"
