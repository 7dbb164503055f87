"""The class-wise robustness chapter (Tian et al., KDD 2021): config, methods, pipeline, report, claims."""
from ..base import Chapter
from . import claims, pipeline, report
from .config import ClasswiseConfig

CHAPTER = Chapter("classwise", ClasswiseConfig, pipeline.run, claims.verdicts, claims.key_numbers, pipeline.rechecks)
make_config = CHAPTER.make_config

__all__ = ["CHAPTER", "ClasswiseConfig", "claims", "make_config", "pipeline", "report"]
