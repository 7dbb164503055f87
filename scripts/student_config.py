"""Print the student edition's book config: _config.yml with sphinx-exercise's hide_solutions on, its local
extensions' folders made absolute (Jupyter Book reads them relative to the config file, which the Makefile writes
under _build/student)."""
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

config = yaml.safe_load((REPO / "_config.yml").read_text())
config["sphinx"]["config"]["hide_solutions"] = True
config["sphinx"]["local_extensions"] = {name: str(REPO / path)
                                        for name, path in config["sphinx"]["local_extensions"].items()}
print(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), end="")
