"""The RoBal chapter (Wu et al., CVPR 2021): config, methods, pipeline, report, claims."""
from ..base import Chapter
from . import claims, pipeline, report
from .config import RobalConfig

CHAPTER = Chapter("robal", RobalConfig, pipeline.run, claims.verdicts, claims.key_numbers, pipeline.rechecks)
make_config = CHAPTER.make_config

__all__ = ["CHAPTER", "RobalConfig", "claims", "make_config", "pipeline", "report"]
