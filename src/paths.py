"""Paths resolved from the project root, never from the working directory."""

from pathlib import Path

# The folder that contains src/, conf/ and pyproject.toml.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve_path(path: str | Path) -> Path:
    """Expand ``~`` and resolve a relative path against the project root."""
    expanded = Path(path).expanduser()
    if not expanded.is_absolute():
        expanded = PROJECT_ROOT / expanded
    return expanded.resolve()
