"""The layering of pyproject.toml's import-linter contracts holds, between stages and inside
data/ and decoding/, and would catch a module importing one above it; src/ has no import cycle.
"""

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

LINT = Path(sys.executable).parent / "lint-imports"
# `from brain2text import Decoder`: the package's lazy public re-export (a module __getattr__),
# ignored by the stage contracts too; every other import counts
LAZY_REEXPORT = ("brain2text", "brain2text.inference.decoder")

# Strongly connected components of the module graph (Tarjan), as JSON lists of module names.
CYCLES_SCRIPT = """
import json, sys
import grimp

graph = grimp.build_graph("brain2text", cache_dir=None)
skip = {tuple(sys.argv[1:3])}
index, low, stack, on_stack, cycles = {}, {}, [], set(), []
sys.setrecursionlimit(10000)

def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.find_modules_directly_imported_by(v)):
        if (v, w) in skip:
            continue
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1 or graph.direct_import_exists(importer=v, imported=v):
            cycles.append(sorted(component))

for module in sorted(graph.modules):
    if module not in index:
        visit(module)
print(json.dumps(cycles))
"""


def _env(root: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"}


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _cycles(root: Path) -> list[list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", CYCLES_SCRIPT, *LAZY_REEXPORT],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of src/ and pyproject.toml with ``line`` appended to ``module``'s file."""
    shutil.copytree(
        REPO / "src" / "brain2text",
        tmp_path / "src" / "brain2text",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    file = tmp_path / "src" / Path(*module.split(".")).with_suffix(".py")
    file.write_text(file.read_text() + f"\n{line}\n")
    return tmp_path


def _contract_names() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [c["name"] for c in config["tool"]["importlinter"]["contracts"]]


def test_the_import_contracts_are_kept():
    names = _contract_names()
    assert {
        "stages import only lower stages",
        "data: dispatch above the layouts above features and writer above readers",
        "data: reading a prepared folder needs no ingestion",
        "decoding: decoders and LM builder above their parts",
    } <= set(names)
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(names)} kept, 0 broken" in result.stdout
    for name in names:
        assert f"{name} KEPT" in result.stdout


def test_src_has_no_import_cycle():
    assert _cycles(REPO) == []


@pytest.mark.parametrize(
    "module, line, contract, chain",
    [
        (  # a lower stage importing a higher one
            "brain2text.data.batches",
            "from brain2text.model.gru import GRUDecoder",
            "stages import only lower stages",
            "brain2text.data.batches -> brain2text.model.gru",
        ),
        (  # the cycle data/ once had: a layout's path importing helpers back from the dispatch
            "brain2text.data.prepare_b2t25",
            "from brain2text.data.prepare import prepare",
            "data: dispatch above the layouts above features and writer above readers",
            "brain2text.data.prepare_b2t25 -> brain2text.data.prepare",
        ),
        (  # one layout's path importing another's instead of the shared features
            "brain2text.data.prepare_b2t25",
            "from brain2text.data.prepare_2023 import prepare_session",
            "data: dispatch above the layouts above features and writer above readers",
            "brain2text.data.prepare_b2t25 -> brain2text.data.prepare_2023",
        ),
        (
            "brain2text.data.dataset",
            "from brain2text.data.features import zscore",
            "data: reading a prepared folder needs no ingestion",
            "brain2text.data.dataset -> brain2text.data.features",
        ),
        (
            "brain2text.decoding.beam",
            "from brain2text.decoding.wfst import GRAPH_FILE",
            "decoding: decoders and LM builder above their parts",
            "brain2text.decoding.beam -> brain2text.decoding.wfst",
        ),
    ],
)
def test_an_import_from_above_breaks_its_contract(tmp_path, module, line, contract, chain):
    result = _lint(_copy_with(tmp_path, module, line))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout
    assert chain in result.stdout


def test_the_cycle_check_finds_a_cycle(tmp_path):
    root = _copy_with(
        tmp_path, "brain2text.data.prepare_b2t25", "from brain2text.data.prepare import prepare"
    )
    cycles = _cycles(root)
    assert len(cycles) == 1
    assert {"brain2text.data.prepare", "brain2text.data.prepare_b2t25"} <= set(cycles[0])
