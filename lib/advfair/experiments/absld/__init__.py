"""The ABSLD chapter (Zhao et al., NeurIPS 2024; with RSLAD and ARD): config, methods, pipeline, report, claims."""
from ..base import Chapter
from . import claims, pipeline, report
from .config import AbsldConfig

CHAPTER = Chapter("absld", AbsldConfig, pipeline.run, claims.verdicts, claims.key_numbers, pipeline.rechecks)
make_config = CHAPTER.make_config

__all__ = ["CHAPTER", "AbsldConfig", "claims", "make_config", "pipeline", "report"]
