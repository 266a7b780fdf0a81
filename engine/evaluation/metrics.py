"""The paper's scores as maths on embeddings: mean cosine similarities (DreamBooth, arXiv 2208.12242, §4.1)."""

from __future__ import annotations

import torch


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` (N×D) with every row of ``b`` (M×D): N×M."""
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return a @ b.T


def mean_similarity(generated: torch.Tensor, reference: torch.Tensor) -> float:
    """DINO and CLIP-I: the mean over all (generated, reference) pairs of their cosine similarity."""
    return cosine_matrix(generated, reference).mean().item()


def paired_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """The mean cosine similarity of row i of ``a`` with row i of ``b`` (CLIP-T: image i and its prompt;
    class drift: the same seed's image now and from the base model)."""
    return cosine_matrix(a, b).diagonal().mean().item()


def mean_of(values: list[float | None]) -> float | None:
    """The mean of the values that apply; None when none does."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
