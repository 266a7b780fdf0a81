"""Scoring preview rounds the way the DreamBooth paper does: subject fidelity (DINO, CLIP-I), prompt
fidelity (CLIP-T) and class drift, and the best step by a documented rule (``best.py``).

``prompts`` builds the evaluation set from the profile, ``metrics`` is the maths on embeddings,
``scorers`` loads and releases the CLIP and DINO models, ``rounds`` scores one round, and ``best``
reads the scores back from events without torch (the CLI uses it).
"""
