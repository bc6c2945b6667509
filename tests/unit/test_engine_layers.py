"""The engine and its alloydb_ai_nl side do not import the fakes: they plug in through the
transport (emulator/fakes/transport.py, passed to `Engine(..., fake=...)`) and the NL composer's
text similarity (`Engine(..., nl_similarity=...)`), both given by emulator/engine_factory.py, so
the engine can be read and changed without them. Lazy imports count too, and so do imports
through another module (a fresh interpreter shows what loading the engine loads)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import REPO
from tests.unit.test_import_cycles import imported_modules, project_modules

ENGINE_PACKAGES = ("emulator.engine", "emulator.nl")


def engine_imports_of_the_fakes() -> dict[str, set[str]]:
    modules = project_modules()
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        if any(name == p or name.startswith(p + ".") for p in ENGINE_PACKAGES):
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


def test_the_scan_covers_the_nl_side() -> None:
    modules = project_modules()
    assert "emulator.nl.compose" in modules and "emulator.nl.handler" in modules
    # the scan sees what the composer imports, so an import of the fakes there would show
    assert "emulator.words" in imported_modules(modules["emulator.nl.compose"], modules)


def test_loading_the_engine_and_the_nl_handler_loads_no_fake() -> None:
    # Indirect imports too: engine.py -> nl.handler -> nl.compose -> ... must stop short of the
    # fakes. engine_factory is the module that plugs them in, and is the one that loads them.
    probe = ("import sys, emulator.engine.engine, emulator.nl.handler\n"
             "print(sorted(m for m in sys.modules if m.startswith('emulator.fakes')))\n"
             "import emulator.engine_factory\n"
             "print('emulator.fakes.embeddings' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    loaded, factory_loads_them = done.stdout.splitlines()
    assert loaded == "[]", f"loading the engine loads the fakes: {loaded}"
    assert factory_loads_them == "True"  # the probe can see a loaded fake


def test_every_fakes_module_imports_first_in_a_fresh_interpreter() -> None:
    # The fakes import a little of the engine's side (its transport types): a module that is
    # only importable after another would show up here as an ImportError of a partially
    # initialized module.
    names = sorted(m for m in project_modules() if m.startswith("emulator.fakes."))
    for name in names:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=REPO,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"import {name} alone fails:\n{done.stderr}"
