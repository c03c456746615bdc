"""The model: typed metadata beside the weights, the one loader, layer names, the ensemble."""

from core.model.bundle import DEFAULT_MODEL_PATH, MODELS_DIR, ModelBundle, load_bundle, load_metadata, sha256_file
from core.model.metadata import ModelError, ModelMetadata, metadata_path, sibling_path

__all__ = ["DEFAULT_MODEL_PATH", "MODELS_DIR", "ModelBundle", "ModelError", "ModelMetadata", "load_bundle",
           "load_metadata", "metadata_path", "sha256_file", "sibling_path"]
