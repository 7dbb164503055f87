"""The DUCAT chapter (dummy classes in adversarial training; Wang et al., arXiv 2410.12671), evaluated with
attacks that know the defence: config, methods, pipeline, report, claims."""
from ..base import Chapter
from . import claims, pipeline, report
from .config import DucatConfig

CHAPTER = Chapter("ducat", DucatConfig, pipeline.run, claims.verdicts, claims.key_numbers, pipeline.rechecks)
make_config = CHAPTER.make_config

__all__ = ["CHAPTER", "DucatConfig", "claims", "make_config", "pipeline", "report"]
