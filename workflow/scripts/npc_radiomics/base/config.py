"""Configuration: validation against the JSON schema with one-line errors, and helpers."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import yaml

from npc_radiomics.base.errors import InputError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last
    silently, so a repeated section would drop the first one's settings)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise InputError(
                    f"{Path(self.name).name}: key {key!r} appears twice "
                    f"(line {key_node.start_mark.line + 1}); keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML file into a dict (an empty file gives ``{}``); a repeated key in one
    mapping is an :class:`InputError` naming the file, key and line."""
    with open(path) as fh:
        return yaml.load(fh, Loader=_UniqueKeyLoader) or {}


def check_config_files(paths) -> None:
    """Every config file given to the run loads without repeated keys (Snakemake's own
    loader keeps the last of two and says nothing)."""
    for path in paths:
        load_yaml(path)


def with_defaults(config: dict, defaults_path: str | Path) -> dict:
    """Put ``config`` (what Snakemake merged from config files and ``--config``) over the
    defaults file, key by key (nested dicts merge; any other value replaces), in place.

    Returns ``config``, now holding every key of the defaults.
    """

    from snakemake.utils import update_config  # Snakemake's own deep merge

    merged = load_yaml(defaults_path)
    update_config(merged, config)
    config.clear()
    config.update(merged)
    return config


def _key_path(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate_config(cfg: dict, schema_path: str | Path) -> None:
    """Validate ``cfg`` against the JSON schema; raise :class:`InputError` naming the key.

    All violations are collected and the first (in sorted key order, so the message is
    stable) is reported with its key path, e.g. ``config key tuning.n_trials: 'ten' is not
    of type 'integer'``.
    """
    import jsonschema

    schema = load_yaml(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        err = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise InputError(f"config key {_key_path(err)}: {err.message}{more}")
    overlap = set(cfg["cohorts"]["train_centers"]) & set(cfg["cohorts"]["external_centers"])
    if overlap:
        raise InputError(
            f"config key cohorts: centre(s) {sorted(overlap)} are both training and external"
        )


#: The random steps seeded with ``derived_seed(seed, step)`` by their rules (rule_seed in
#: common.smk; the provenance record lists them). The modelling rules take the master seed
#: and derive per-purpose seeds from it themselves (see npc_radiomics.modelling.studies).
SEED_STEPS = ("demo", "split", "evaluation", "shap", "clinical", "perturbation")


def derived_seed(master_seed: int, *keys: str) -> int:
    """A stable 32-bit seed for one random step, derived from the master seed and names.

    Uses CRC32 of the names (never Python's salted ``hash``), so seeds do not change
    between runs, processes or machines.
    """
    text = "/".join([str(master_seed), *map(str, keys)])
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, for provenance records."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
