"""Write `serving/requirements.txt`: the pinned distributions the BentoML service needs at run time.

Starts from the third-party packages the modules behind `serving.service` import (the import graph
of grimp, lazy imports inside functions included, `if TYPE_CHECKING:` imports left out), maps
each to its distribution (`importlib.metadata.packages_distributions`), with the extras
pyproject.toml asks for (`psycopg[binary]`), and takes the closure of their requirements as the
installed metadata states them (markers evaluated for this interpreter, like requirements.lock).
Every version is requirements.lock's; a distribution missing from the lock is an error.

    python scripts/serving_requirements.py           # rewrite serving/requirements.txt
    python scripts/serving_requirements.py --check   # exit 1 when it is stale

`bentofile.yaml` installs this file, not the whole development lock (pytest, ruff, jupyter...).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
import textwrap
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "serving.service"
OUT = ROOT / "serving" / "requirements.txt"
# the project's packages (pyproject.toml [tool.setuptools.packages.find]); everything else is third party
PROJECT_PACKAGES = ("tenure", "configs", "features", "training", "models", "serving", "monitoring", "benchmarks")


def service_modules(service: str = SERVICE) -> tuple[set[str], set[str]]:
    """(project modules `service` imports directly or through others, third-party top-level modules
    those import), from the import graph of the source (nothing is imported)."""
    import grimp

    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph(*PROJECT_PACKAGES, include_external_packages=True,
                                  exclude_type_checking_imports=True, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    internal = {service} | {m for m in graph.find_upstream_modules(service)
                            if m.split(".")[0] in PROJECT_PACKAGES}
    external = {d.split(".")[0] for m in internal for d in graph.find_modules_directly_imported_by(m)
                if d.split(".")[0] not in PROJECT_PACKAGES}
    return internal, {m for m in external if m not in sys.stdlib_module_names}


def root_requirements(modules: set[str]) -> list[Requirement]:
    """The distributions providing `modules`, with the extras pyproject.toml's dependencies name."""
    owners = md.packages_distributions()
    unknown = sorted(m for m in modules if m not in owners)
    if unknown:
        raise SystemExit(f"no installed distribution provides {unknown}; install the environment first (make venv)")
    declared = {canonicalize_name(r.name): r for r in map(
        Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])}
    out = []
    for dist in sorted({canonicalize_name(d) for m in modules for d in owners[m]}):
        extras = sorted(declared[dist].extras) if dist in declared else []
        out.append(Requirement(f"{dist}[{','.join(extras)}]" if extras else dist))
    return out


def closure(roots: list[Requirement]) -> set[str]:
    """Canonical names of `roots` and of everything they require here, extras followed."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo = [(canonicalize_name(r.name), extra) for r in roots for extra in ("", *r.extras)]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        names.add(name)
        for raw in md.requires(name) or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            if req.marker is None and extra:
                continue  # an unconditional requirement was followed with extra ""
            todo.extend((canonicalize_name(req.name), e) for e in ("", *req.extras))
    return names


def locked_versions(lock: Path = ROOT / "requirements.lock") -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def compute(service: str = SERVICE) -> str:
    """The text of serving/requirements.txt."""
    _, modules = service_modules(service)
    roots = root_requirements(modules)
    pins = locked_versions()
    names = closure(roots)
    missing = sorted(n for n in names if n not in pins)
    if missing:
        raise SystemExit(f"{missing} are required by the service but not pinned in requirements.lock; "
                         "run `make lock`")
    head = [
        "# The distributions the BentoML service (serving.service) needs at run time, pinned as in",
        "# requirements.lock; written by scripts/serving_requirements.py (do not edit by hand; a unit",
        "# test fails when it is stale). The service imports:",
        *textwrap.wrap(", ".join(str(r) for r in roots), 96, initial_indent="#   ", subsequent_indent="#   "),
    ]
    return "\n".join([*head, *(f"{n}=={pins[n]}" for n in sorted(names))]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when serving/requirements.txt is stale")
    args = parser.parse_args()
    text = compute()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            raise SystemExit(f"{OUT.relative_to(ROOT)} is stale; run python scripts/serving_requirements.py")
        return
    OUT.write_text(text)
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    print(f"{OUT.relative_to(ROOT)}: {len(pins)} distributions")


if __name__ == "__main__":
    main()
