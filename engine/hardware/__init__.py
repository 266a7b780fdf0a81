"""This machine's GPUs and libraries and the presets that fit them (machine.py), and rental cards by name
(card_names.py) for judging a card this machine does not have."""
