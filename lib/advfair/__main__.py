import sys

from .parser import build_parser

# --help and --version answer here, before the commands (and torch) are imported.
arguments = build_parser().parse_args()
from .cli import dispatch  # noqa: E402

sys.exit(dispatch(arguments))
