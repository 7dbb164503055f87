"""Print the student edition's book config: _config.yml with sphinx-exercise's hide_solutions on, and without
what would hand a student the notebooks with their solutions: the download button, the copied sources
(`_sources/`) and the Colab buttons. Its local extensions' folders are made absolute (Jupyter Book reads them
relative to the config file, which the Makefile writes under _build/student)."""
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

config = yaml.safe_load((REPO / "_config.yml").read_text())
config["sphinx"]["config"] |= {"hide_solutions": True, "html_copy_source": False}
config.pop("launch_buttons", None)
# Merged into the theme options Jupyter Book builds (set alone, they would replace them).
config["sphinx"]["recursive_update"] = True
config["sphinx"]["config"]["html_theme_options"] = {"use_download_button": False}
config["sphinx"]["local_extensions"] = {name: str(REPO / path)
                                        for name, path in config["sphinx"]["local_extensions"].items()}
print(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), end="")
