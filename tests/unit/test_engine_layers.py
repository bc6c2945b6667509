"""The engine does not import the fakes: they plug in through the transport
(emulator/fakes/transport.py, passed to `Engine(..., fake=...)`), so the engine can be read and
changed without them. Lazy imports count too."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import REPO
from tests.unit.test_import_cycles import imported_modules, project_modules


def engine_imports_of_the_fakes() -> dict[str, set[str]]:
    modules = project_modules()
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "emulator.engine" or name.startswith("emulator.engine."):
            fakes = {m for m in imported_modules(path, modules)
                     if m == "emulator.fakes" or m.startswith("emulator.fakes.")}
            if fakes:
                found[name] = fakes
    return found


def test_the_scan_sees_the_engine_and_the_fakes() -> None:
    modules = project_modules()
    assert "emulator.engine.engine" in modules and "emulator.fakes.transport" in modules
    # the scan would see such an import: the fakes' transport imports the engine's
    assert "emulator.engine.transport" in imported_modules(
        modules["emulator.fakes.transport"], modules)


def test_no_engine_module_imports_the_fakes() -> None:
    found = engine_imports_of_the_fakes()
    assert not found, f"the engine imports the fakes: {found}; plug them in through the transport"


def test_every_fakes_module_imports_first_in_a_fresh_interpreter() -> None:
    # The fakes import a little of the engine's side (its transport types) and the engine's
    # package imports the NL handler, which imports the fakes: a module that is only importable
    # after another would show up here as an ImportError of a partially initialized module.
    names = sorted(m for m in project_modules() if m.startswith("emulator.fakes."))
    for name in names:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=REPO,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"import {name} alone fails:\n{done.stderr}"
