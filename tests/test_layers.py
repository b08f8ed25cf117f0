"""Architecture rules: core is sans-I/O, and imports point one way (cli -> engine -> io -> core)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "p2pshare"
LAYERS = ["core", "io", "engine", "cli"]  # each may import only from layers to its left
FORBIDDEN_IN_CORE = {
    "asyncio",
    "socket",
    "aiofiles",
    "time",
    "rich",
    "typer",
    "selectors",
    "threading",
    "subprocess",
    "os",
}


def modules(layer: str) -> list[Path]:
    return sorted((PKG / layer).rglob("*.py"))


def imported_names(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name a file imports (relative imports resolved), with its line."""
    rel = path.relative_to(PKG.parent)
    return names_in(path.read_text(encoding="utf-8"), ".".join(rel.parts[:-1]))


def names_in(source: str, package: str) -> list[tuple[int, str]]:
    """Imported module names in ``source``, a module of ``package`` (for relative imports)."""
    tree = ast.parse(source)
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.append((node.lineno, module))
            # `from p2pshare import io` imports a layer too.
            names.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "p2pshare" and parts[1] in LAYERS:
        return parts[1]
    return None


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: str(p.relative_to(PKG)))
def test_core_does_no_io(path: Path) -> None:
    """A core module imports nothing that does I/O, reads the clock or spawns threads."""
    bad = [
        f"line {line}: {name}"
        for line, name in imported_names(path)
        if name.split(".")[0] in FORBIDDEN_IN_CORE
    ]
    assert not bad, f"{path.relative_to(PKG)} imports I/O modules: {bad}"


@pytest.mark.parametrize(
    "path", [p for layer in LAYERS for p in modules(layer)], ids=lambda p: str(p.relative_to(PKG))
)
def test_imports_point_down(path: Path) -> None:
    """A module imports only from its own layer or the layers below it (cli -> engine -> io -> core)."""
    own = path.relative_to(PKG).parts[0]
    allowed = set(LAYERS[: LAYERS.index(own) + 1])
    bad = [
        f"line {line}: {name}"
        for line, name in imported_names(path)
        if (layer := layer_of(name)) is not None and layer not in allowed
    ]
    assert not bad, f"{path.relative_to(PKG)} ({own}) imports upward: {bad}"


def test_checker_sees_violations() -> None:
    """The import scanner catches plain, from- and relative imports (so the rules above can fail)."""
    source = (
        "import os.path\nfrom time import monotonic\nfrom ..engine import create\nfrom p2pshare import cli\n"
    )
    tree_names = [name for _, name in names_in(source, "p2pshare.core")]
    assert "os.path" in tree_names
    assert "time" in tree_names
    assert "p2pshare.engine" in tree_names
    assert "p2pshare.cli" in tree_names
    assert layer_of("p2pshare.engine.create") == "engine"
    assert layer_of("p2pshare.errors") is None


def test_only_the_session_knows_the_tcp_link() -> None:
    """The engine sees peers' transports as Link only: the TCP PeerLink appears in the session alone."""
    for path in modules("engine"):
        if path.name == "session.py":
            continue
        source = path.read_text(encoding="utf-8")
        names = [name for _, name in imported_names(path)]
        assert not any(n.startswith("p2pshare.io.peer_link") for n in names), f"{path.name} imports peer_link"
        assert "PeerLink" not in source, f"{path.name} names PeerLink"
        assert "isinstance(link" not in source, f"{path.name} asks which kind of link it holds"
