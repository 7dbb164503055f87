"""The AALP chapter (ALP exact, an AALP-style reconstruction, gradient-masking checks): config, methods,
pipeline, report, claims."""
from ..base import Chapter
from . import claims, pipeline, report
from .config import AALPConfig

CHAPTER = Chapter("aalp", AALPConfig, pipeline.run, claims.verdicts, claims.key_numbers, pipeline.rechecks)
make_config = CHAPTER.make_config

__all__ = ["AALPConfig", "CHAPTER", "claims", "make_config", "pipeline", "report"]
