"""Methods as catalogue entries (`catalogue`): what each paper proposes, apart from any chapter's config."""
from .catalogue import CATALOGUE, Entry, entry, objective

__all__ = ["CATALOGUE", "Entry", "entry", "objective"]
