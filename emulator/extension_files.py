"""Install the google_ml_integration extension's files into a PostgreSQL installation.

The extension is SQL only: a control file and versioned scripts, copied into the directory that
``pg_config --sharedir`` names (``<sharedir>/extension``). ``CREATE EXTENSION`` then works as for
any other extension. The embedded server gets them at each start; for a server the user runs,
``alloydb-ai-emulator install-extension --pg-config PATH`` does the same.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

EXTENSION_NAME = "google_ml_integration"


class ExtensionInstallError(Exception):
    """The files could not be installed; the message says why and what to do."""


def extension_source_files() -> list[Path]:
    sql_dir = Path(str(resources.files("emulator") / "sql"))
    return sorted(
        p for p in sql_dir.iterdir() if p.name.startswith(EXTENSION_NAME) and p.suffix in (".sql", ".control")
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
    files = extension_source_files()
    if not files:
        raise ExtensionInstallError("the package ships no extension files; reinstall it")
    try:
        for src in files:
            dst = target / src.name
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                shutil.copyfile(src, dst)
                dst.chmod(0o644)
    except OSError as exc:
        raise ExtensionInstallError(
            f"cannot write the extension files into {target}: {exc}. Run as a user who can, or "
            "let the proxy create the extension's objects itself (see docs)"
        ) from exc
    return target
