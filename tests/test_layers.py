"""The stage layering of pyproject.toml's import-linter contracts holds, and would catch a
lower stage importing a higher one."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_are_kept():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_lower_stage_importing_a_higher_one_breaks_the_contract(tmp_path):
    shutil.copytree(
        REPO / "src" / "brain2text",
        tmp_path / "src" / "brain2text",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    batches = tmp_path / "src" / "brain2text" / "data" / "batches.py"
    batches.write_text(batches.read_text() + "\nfrom brain2text.model.gru import GRUDecoder\n")
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert "stages import only lower stages BROKEN" in result.stdout
    assert "brain2text.data.batches -> brain2text.model.gru" in result.stdout
