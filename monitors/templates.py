"""`earful init`: write a starting configuration that passes `earful check`.

The files are kept as real YAML under `templates/` (packaged with earful),
so what `init` writes is exactly what the tests load and validate.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# template name -> path written, relative to the target directory
FILES = {
    "cron.yaml": "cron.yaml",
    "rules/example.yaml": "rules/example.yaml",
    "env.example": ".env.example",
}


def write_templates(directory: Path, force: bool = False) -> list[Path]:
    """Write every template into `directory`; FileExistsError if one exists (unless `force`)."""
    root = resources.files("earful.monitors") / "templates"
    targets = {directory / target: source for source, target in FILES.items()}
    if not force:
        for target in targets:
            if target.exists():
                raise FileExistsError(str(target))
    for target, source in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((root / source).read_text(encoding="utf-8"), encoding="utf-8")
    return list(targets)
