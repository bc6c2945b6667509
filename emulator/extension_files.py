"""Install the google_ml_integration extension's files into a PostgreSQL installation.

The extension is SQL only: a control file and versioned scripts, copied into the directory that
``pg_config --sharedir`` names (``<sharedir>/extension``). ``CREATE EXTENSION`` then works as for
any other extension. The embedded server gets them at each start; for a server the user runs,
``alloydb-ai-emulator install-extension --pg-config PATH`` does the same.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

EXTENSION_NAME = "google_ml_integration"


class ExtensionInstallError(Exception):
    """The files could not be installed; the message says why and what to do."""


# The emulator's own extension (the inspector's SQL view), installed alongside.
OWN_EXTENSION_NAME = "alloydb_ai_emulator"


def extension_source_files(name: str = EXTENSION_NAME) -> list[Path]:
    sql_dir = Path(str(resources.files("emulator") / "sql"))
    return sorted(
        p for p in sql_dir.iterdir() if p.name.startswith(name) and p.suffix in (".sql", ".control")
    )


def extension_dir(pg_config: Path | str) -> Path:
    try:
        result = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ExtensionInstallError(f"could not run {pg_config} --sharedir: {exc}") from exc
    return Path(result.stdout.strip()) / "extension"


def install_extension_files(pg_config: Path | str) -> Path:
    """Copy the control file and scripts; returns the directory they went to."""
    target = extension_dir(pg_config)
    files = extension_source_files() + extension_source_files(OWN_EXTENSION_NAME)
    if not files:
        raise ExtensionInstallError("the package ships no extension files; reinstall it")
    try:
        for src in files:
            dst = target / src.name
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                shutil.copyfile(src, dst)
                dst.chmod(0o644)
        # Scripts of an older release left behind would give PostgreSQL another (shorter)
        # path to the default version: remove them.
        shipped = {src.name for src in files}
        for old in target.glob(f"{EXTENSION_NAME}*"):
            if old.name not in shipped and old.suffix in (".sql", ".control"):
                old.unlink()
    except OSError as exc:
        raise ExtensionInstallError(
            f"cannot write the extension files into {target}: {exc}. Run as a user who can, or "
            "let the proxy create the extension's objects itself (see docs)"
        ) from exc
    return target


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def install_script(target_version: str | None = None) -> str:
    """The SQL that CREATE EXTENSION would run: the base script and the upgrade chain."""
    files = {p.name: p for p in extension_source_files()}
    control = files[f"{EXTENSION_NAME}.control"].read_text()
    match = re.search(r"default_version\s*=\s*'([^']+)'", control)
    target = target_version or (match.group(1) if match else "")
    bases = sorted(
        (m.group(1) for name in files if (m := re.fullmatch(rf"{EXTENSION_NAME}--([\d.]+)\.sql", name))),
        key=_version_key,
    )
    upgrades = {
        (m.group(1), m.group(2)): files[name]
        for name in files
        if (m := re.fullmatch(rf"{EXTENSION_NAME}--([\d.]+)--([\d.]+)\.sql", name))
    }
    version = bases[0]
    parts = [files[f"{EXTENSION_NAME}--{version}.sql"].read_text()]
    while version != target:
        step = next(((a, b) for (a, b) in upgrades if a == version), None)
        if step is None:
            raise ExtensionInstallError(f"no upgrade path from {version} to {target}")
        parts.append(upgrades[step].read_text())
        version = step[1]
    return "\n".join(_outside_extension(p) for p in parts)


def _outside_extension(script: str) -> str:
    """An extension script made runnable as plain SQL: no psql guard, no config_dump."""
    script = re.sub(r"^\\echo .*$", "", script, flags=re.MULTILINE)
    return re.sub(
        r"SELECT\s+pg_catalog\.pg_extension_config_dump\(.*?\);", "", script, flags=re.DOTALL
    )


class ExtensionEmulation:
    """``CREATE/DROP EXTENSION google_ml_integration`` on a server without the extension's files:
    the proxy sends these statements instead (documented difference: no pg_extension row)."""

    TAG = "$alloydb_ai_emulator$"

    def __init__(self) -> None:
        script = install_script()
        self._script_tag = "$alloydb_ai_emulator_script$"
        if self._script_tag in script:  # pragma: no cover - the scripts never contain it
            raise ExtensionInstallError("the install script contains the quoting tag")
        self._script = script
        self._public_functions = sorted(
            set(re.findall(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+public\.(\w+)", script))
        )

    def create_sql(self, if_not_exists: bool) -> str:
        exists = (
            "RAISE NOTICE 'extension \"google_ml_integration\" already exists, skipping'; RETURN;"
            if if_not_exists
            else "RAISE EXCEPTION 'extension \"google_ml_integration\" already exists' "
            "USING ERRCODE = 'duplicate_object';"
        )
        return (
            f"DO {self.TAG} BEGIN "
            f"IF pg_catalog.to_regnamespace('google_ml') IS NOT NULL THEN {exists} END IF; "
            f"EXECUTE {self._script_tag}{self._script}{self._script_tag}; "
            f"END {self.TAG}"
        )

    def drop_sql(self, if_exists: bool) -> str:
        missing = (
            "RAISE NOTICE 'extension \"google_ml_integration\" does not exist, skipping'; RETURN;"
            if if_exists
            else "RAISE EXCEPTION 'extension \"google_ml_integration\" does not exist' "
            "USING ERRCODE = 'undefined_object';"
        )
        drops = "".join(f"DROP FUNCTION IF EXISTS public.{name}; " for name in self._public_functions)
        return (
            f"DO {self.TAG} BEGIN "
            f"IF pg_catalog.to_regnamespace('google_ml') IS NULL THEN {missing} END IF; "
            f"DROP SCHEMA google_ml, ai CASCADE; {drops}"
            f"END {self.TAG}"
        )
