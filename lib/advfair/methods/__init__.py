"""Methods as catalogue entries (`catalogue`): what each paper proposes, apart from any chapter's config."""
from .catalogue import CATALOGUE, Entry, ducat_key, entry, objective

__all__ = ["CATALOGUE", "Entry", "ducat_key", "entry", "objective"]
