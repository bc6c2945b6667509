"""The PostgreSQL extensions this emulator ships, and how they reach a PostgreSQL installation.

Each extension is SQL only: a control file and versioned scripts, copied into the directory
that ``pg_config --sharedir`` names (``<sharedir>/extension``). ``CREATE EXTENSION`` then works
as for any other extension. The embedded server gets them at each start; for a server the user
runs, ``alloydb-ai-emulator install-extension --pg-config PATH`` does the same. On a server
where they cannot be installed, ``ExtensionEmulation`` gives the proxy the SQL that stands in for
``CREATE`` / ``DROP EXTENSION``.

``EXTENSIONS`` is the one list. An extension whose files are written by hand ships them in
``emulator/sql/`` (``<name>.control`` and ``<name>--*.sql``) and is one ``ShippedExtension``
entry; google_ml_integration's scripts are built from its sources (emulator/extension_build.py).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from emulator import extension_build
from emulator.extension_renewal import Renewable, fingerprint_function, merge, split_sql


class ExtensionInstallError(Exception):
    """The files could not be installed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class BuiltExtension:
    """An extension whose files are generated (file name -> content)."""

    name: str
    build: Callable[[], dict[str, str]]

    def files(self) -> dict[str, str]:
        return self.build()


@dataclass(frozen=True, slots=True)
class ShippedExtension:
    """An extension whose control file and scripts sit in emulator/sql/ as they are; each script
    ends with the build's fingerprint (emulator/extension_renewal.py) in ``<its
    schema>._emulator_build()`` (``_<name>_emulator_build()`` where it has no schema of its
    own)."""

    name: str

    def files(self) -> dict[str, str]:
        return _with_fingerprints(self.name, self.written())

    def written(self) -> dict[str, str]:
        """The files as they are written in emulator/sql/."""
        sql_dir = Path(str(resources.files("emulator") / "sql"))
        return {
            p.name: p.read_text()
            for p in sorted(sql_dir.iterdir())
            if p.name == f"{self.name}.control"
            or (p.name.startswith(f"{self.name}--") and p.suffix == ".sql")
        }

    def renewable(self) -> Renewable | None:
        written = self.written()
        function = _fingerprint_function(self.name, written)
        if function is None:
            return None
        installs = _install_scripts(self.name, written)
        return Renewable(self.name, function, tuple(installs),
                         lambda version: merge([split_sql(installs[version])]))


EXTENSIONS: tuple[BuiltExtension | ShippedExtension, ...] = (
    BuiltExtension(extension_build.NAME, extension_build.extension_files),
    ShippedExtension("alloydb_scann"),  # docs/search-and-forecasting.md
    ShippedExtension("alloydb_ai_nl"),  # docs/natural-language.md
    ShippedExtension("parameterized_views"),  # docs/parameterized-views.md
    ShippedExtension("vector_assist"),  # docs/search-and-forecasting.md
    # The emulator's own (not AlloyDB's): the call inspector's view (docs/inspector.md).
    ShippedExtension("alloydb_ai_emulator"),
)
EXTENSION_NAMES: tuple[str, ...] = tuple(e.name for e in EXTENSIONS)


def renewables() -> list[Renewable]:
    """The extensions renewed at start-up in databases another build made, in the order of
    EXTENSIONS (a required one first)."""
    found = [Renewable(extension_build.NAME, extension_build.FINGERPRINT_FUNCTION,
                       extension_build.VERSIONS, extension_build.version_parts)]
    for extension in EXTENSIONS:
        if isinstance(extension, ShippedExtension):
            renewable = extension.renewable()
            if renewable is not None:
                found.append(renewable)
    return found


def _install_scripts(name: str, files: dict[str, str]) -> dict[str, str]:
    """version -> the install script ``<name>--<version>.sql`` among ``files``."""
    escaped = re.escape(name)
    return {m.group(1): text for fname, text in files.items()
            if (m := re.fullmatch(rf"{escaped}--([^-]+)\.sql", fname))}


def _fingerprint_function(name: str, files: dict[str, str]) -> str | None:
    """``<first schema>._emulator_build`` of the extension's scripts; for one without a schema
    of its own (alloydb_scann), ``_<name>_emulator_build`` unqualified: in the schema CREATE
    EXTENSION put it in (extension_renewal.inspect looks there). None without scripts."""
    installs = _install_scripts(name, files).values()
    for text in installs:
        schemas = _created("SCHEMA", text)
        if schemas:
            return f"{schemas[0]}._emulator_build"
    return f"_{name}_emulator_build" if installs else None


def _with_fingerprints(name: str, files: dict[str, str]) -> dict[str, str]:
    """Each script of a hand-written extension with the fingerprint of the version it leaves
    (an install script's own; an update A--B's is B's install script's)."""
    function = _fingerprint_function(name, files)
    if function is None:
        return files
    installs = _install_scripts(name, files)
    escaped = re.escape(name)
    out = dict(files)
    for fname, text in files.items():
        match = re.fullmatch(rf"{escaped}--(?:[^-]+--)?([^-]+)\.sql", fname)
        if match is not None and match.group(1) in installs:
            version = match.group(1)
            parts = merge([split_sql(installs[version])])
            out[fname] = text + "\n" + fingerprint_function(function, f"{name} {version}", parts)
    return out


# AlloyDB's `vector` is pgvector under Google's version numbers. ai/measure-vector-query-recall
# has users run `CREATE EXTENSION IF NOT EXISTS vector WITH VERSION '0.8.0.google-3'` (or
# `ALTER EXTENSION vector UPDATE TO '0.8.0.google-3'`). The emulator takes those versions as
# labels of the pgvector it runs: an update script with nothing in it, each way between pgvector's
# default version and the label, so both statements work and \dx shows the label. Nothing of
# Google's additions comes with it (docs/differences.md). Real instances show the later ones: an
# extension upgrade guide run on AlloyDB goes from `0.8.0.google-4` with `ALTER EXTENSION vector
# UPDATE TO '0.8.1.google-1'`, and deployment notes of an instance on google_ml_integration 1.5.9
# read `SELECT extversion FROM pg_extension WHERE extname = 'vector'` as `0.8.1.google-1`; the
# AlloyDB Omni image (google/alloydbomni, 2026-08) installs `0.8.2.google-1` (one label to
# another goes through pgvector's default version: two empty steps).
PGVECTOR_VERSION_LABELS: tuple[str, ...] = (
    "0.8.0.google-3", "0.8.0.google-4", "0.8.1.google-1", "0.8.2.google-1")


def pgvector_label_files(extension_dir: Path) -> dict[str, str]:
    """The update scripts that make PGVECTOR_VERSION_LABELS versions of the pgvector installed in
    ``extension_dir`` (none when pgvector is not there)."""
    control = extension_dir / "vector.control"
    if not control.is_file():
        return {}
    match = re.search(r"default_version\s*=\s*'([^']+)'", control.read_text())
    if match is None:
        return {}
    default = match.group(1)
    files: dict[str, str] = {}
    for label in PGVECTOR_VERSION_LABELS:
        if label != default:
            note = (f"-- vector {label} is AlloyDB's name for its pgvector; the emulator's pgvector "
                    f"is {default}, under that name (emulator/extension_files.py).\n")
            files[f"vector--{default}--{label}.sql"] = note
            files[f"vector--{label}--{default}.sql"] = note
    return files


def _install_pgvector_labels(target: Path) -> None:
    files = pgvector_label_files(target)
    for name, content in files.items():
        dst = target / name
        if not dst.exists() or dst.read_text() != content:
            dst.write_text(content)
            dst.chmod(0o644)
    # pgvector upgraded since: the old default's scripts would offer a path that is not there
    for old in target.glob("vector--*.sql"):
        if old.name not in files and any(label in old.name for label in PGVECTOR_VERSION_LABELS):
            old.unlink()


def _extension(name: str) -> BuiltExtension | ShippedExtension:
    for extension in EXTENSIONS:
        if extension.name == name:
            return extension
    raise ExtensionInstallError(f"the emulator ships no extension named {name!r}")


def extension_dir(pg_config: Path | str) -> Path:
    try:
        result = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ExtensionInstallError(f"could not run {pg_config} --sharedir: {exc}") from exc
    return Path(result.stdout.strip()) / "extension"


def install_extension_files(pg_config: Path | str) -> Path:
    """Write every extension's control file and scripts; returns the directory they went to."""
    target = extension_dir(pg_config)
    try:
        for extension in EXTENSIONS:
            files = extension.files()
            if not files:
                raise ExtensionInstallError(
                    f"the package ships no files for {extension.name}; reinstall it")
            for name, content in files.items():
                dst = target / name
                data = content.encode()
                if not dst.exists() or dst.read_bytes() != data:
                    dst.write_bytes(data)
                    dst.chmod(0o644)
            # Scripts of an older release left behind would give PostgreSQL other paths
            # between versions (or versions we no longer offer): remove them.
            for old in target.glob(f"{extension.name}--*.sql"):
                if old.name not in files:
                    old.unlink()
        _install_pgvector_labels(target)
    except OSError as exc:
        raise ExtensionInstallError(
            f"cannot write the extension files into {target}: {exc}. Run as a user who can, or "
            "let the proxy create the extension's objects itself (see docs)"
        ) from exc
    return target


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def default_version(name: str) -> str:
    files = _extension(name).files()
    match = re.search(r"default_version\s*=\s*'([^']+)'", files.get(f"{name}.control", ""))
    if match is None:
        raise ExtensionInstallError(f"{name}.control has no default_version")
    return match.group(1)


def requirements(name: str) -> list[str]:
    """The extensions ``name``'s control file ``requires``, in order."""
    control = _extension(name).files().get(f"{name}.control", "")
    match = re.search(r"^\s*requires\s*=\s*'([^']*)'", control, flags=re.MULTILINE)
    return [r.strip() for r in match.group(1).split(",") if r.strip()] if match else []


def install_script(name: str, target_version: str | None = None) -> str:
    """The SQL that ``CREATE EXTENSION name [VERSION v]`` would run: the newest install script
    not after that version, then the upgrade chain to it."""
    files = _extension(name).files()
    target = target_version or default_version(name)
    escaped = re.escape(name)
    installs = _install_scripts(name, files)
    upgrades = {
        m.group(1): (m.group(2), text) for fname, text in files.items()
        if (m := re.fullmatch(rf"{escaped}--([^-]+)--([^-]+)\.sql", fname))
    }
    if target in installs:
        return _outside_extension(installs[target])
    # PostgreSQL's own words when it finds no way to the version.
    unknown = ExtensionInstallError(
        f'extension "{name}" has no installation script nor update path for version "{target}"')
    starts = [v for v in installs if _version_key(v) < _version_key(target)]
    if not starts:
        raise unknown
    version = max(starts, key=_version_key)
    parts = [installs[version]]
    while version != target:
        if version not in upgrades:
            raise unknown
        version, text = upgrades[version]
        parts.append(text)
    return "\n".join(_outside_extension(p) for p in parts)


def update_steps(name: str, target: str) -> list[tuple[str, str, str]]:
    """The upgrade scripts that lead to ``target``, oldest first, as (from, to, SQL): what
    ``ALTER EXTENSION name UPDATE TO target`` may run, from wherever the chain is entered."""
    files = _extension(name).files()
    escaped = re.escape(name)
    into = {
        m.group(2): (m.group(1), text) for fname, text in files.items()
        if (m := re.fullmatch(rf"{escaped}--([^-]+)--([^-]+)\.sql", fname))
    }
    steps: list[tuple[str, str, str]] = []
    version = target
    while version in into and len(steps) < len(into):
        old, text = into[version]
        steps.append((old, version, _outside_extension(text)))
        version = old
    return steps[::-1]


def _literal(text: str) -> str:
    """A SQL string literal of ``text`` with no ``$`` in it, so that it is safe inside any
    dollar-quoted body (the DO blocks above), whatever a client wrote."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("$", "\\x24")
    return f"E'{escaped}'"


def _outside_extension(script: str) -> str:
    """An extension script made runnable as plain SQL: no psql guard, no config_dump."""
    script = re.sub(r"^\\echo .*$", "", script, flags=re.MULTILINE)
    return re.sub(
        r"SELECT\s+pg_catalog\.pg_extension_config_dump\(.*?\);", "", script, flags=re.DOTALL
    )


_QUOTE_TAG = "$alloydb_ai_emulator_script$"


class ExtensionEmulation:
    """``CREATE / ALTER ... UPDATE / DROP EXTENSION`` of the emulator's extensions on a server
    without their files: the proxy sends these statements instead (documented difference: no
    pg_extension row). Whether an extension exists is read from the first schema its script
    creates, or, for one that creates none, from its first function. Having no pg_extension
    row, the stand-in keeps its own record of the version it installed: a function
    ``<first schema>._stand_in_version()`` (an extension without a schema has one version)."""

    TAG = "$alloydb_ai_emulator$"

    def __init__(self, names: tuple[str, ...] = EXTENSION_NAMES) -> None:
        self.names = names
        self._defaults = {name: install_script(name) for name in names}

    def handles(self, name: str) -> bool:
        return name in self.names

    def create_sql(self, name: str, if_not_exists: bool, version: str | None = None) -> str:
        script = self._defaults[name] if version is None else self._script(name, version)
        if _QUOTE_TAG in script:  # pragma: no cover - the scripts never contain it
            raise ExtensionInstallError("the install script contains the quoting tag")
        exists = (
            f"RAISE NOTICE 'extension \"{name}\" already exists, skipping'; RETURN;"
            if if_not_exists
            else f"RAISE EXCEPTION 'extension \"{name}\" already exists' "
            "USING ERRCODE = 'duplicate_object';"
        )
        return (
            f"DO {self.TAG} BEGIN "
            f"IF {_presence_test(self._defaults[name])} THEN {exists} END IF; "
            f"{self._required(name)}"
            f"EXECUTE {_QUOTE_TAG}{script}{_QUOTE_TAG}; "
            f"{self._record(name, version or default_version(name))}"
            f"END {self.TAG}"
        )

    def update_sql(self, name: str, version: str | None = None) -> str:
        """``ALTER EXTENSION name UPDATE [TO version]``: the upgrade scripts from the recorded
        version to ``version`` (default: the newest), with PostgreSQL's errors and notice."""
        target = version or default_version(name)
        script = self._defaults[name]
        steps = update_steps(name, target)
        record_fn = self._record_function(name)
        if record_fn is not None:
            read = (f"IF pg_catalog.to_regproc('{record_fn}') IS NOT NULL THEN "
                    f"EXECUTE 'SELECT {record_fn}()' INTO installed; END IF; ")
        else:  # nothing to record: the extension has one version
            read = f"installed := {_literal(default_version(name))}; "
        unknown = _literal(
            f'the emulator cannot tell which version of extension "{name}" it installed')
        hint = _literal(f"DROP EXTENSION {name}; then CREATE EXTENSION {name} VERSION '...';")
        apply = "".join(
            f"IF reached = {_literal(old)} THEN "
            f"EXECUTE {_QUOTE_TAG}{sql}{_QUOTE_TAG}; reached := {_literal(new)}; END IF; "
            for old, new, sql in steps
        )
        return (
            f"DO {self.TAG} DECLARE installed text; reached text; BEGIN "
            f"IF NOT ({_presence_test(script)}) THEN "
            f"RAISE EXCEPTION 'extension \"{name}\" does not exist' "
            "USING ERRCODE = 'undefined_object'; END IF; "
            f"{read}"
            f"IF installed IS NULL THEN RAISE EXCEPTION '%', {unknown} "
            f"USING ERRCODE = 'object_not_in_prerequisite_state', HINT = {hint}; END IF; "
            f"IF installed = {_literal(target)} THEN "
            f"RAISE NOTICE 'version \"%\" of extension \"{name}\" is already installed', "
            "installed; RETURN; END IF; "
            f"reached := installed; {apply}"
            f"IF reached IS DISTINCT FROM {_literal(target)} THEN "
            f"RAISE EXCEPTION 'extension \"{name}\" has no update path from version \"%\" "
            "to version \"%\"', installed, "
            f"{_literal(target)} USING ERRCODE = 'invalid_parameter_value'; END IF; "
            f"{self._record(name, target)}"
            f"END {self.TAG}"
        )

    def _record_function(self, name: str) -> str | None:
        schemas = _created("SCHEMA", self._defaults[name])
        return f"{schemas[0]}._stand_in_version" if schemas else None

    def _record(self, name: str, version: str) -> str:
        """The statement (inside the DO block) that records the installed version."""
        function = self._record_function(name)
        if function is None:
            return ""
        body = f"SELECT {_literal(version)}::text"
        comment = _literal(f"the version of {name} the emulator's proxy installed here "
                           "(a stand-in: no pg_extension row)")
        return (
            f"EXECUTE {_QUOTE_TAG}CREATE OR REPLACE FUNCTION {function}() RETURNS text "
            f"LANGUAGE sql IMMUTABLE AS $v$ {body} $v${_QUOTE_TAG}; "
            f"EXECUTE {_QUOTE_TAG}COMMENT ON FUNCTION {function}() IS {comment}{_QUOTE_TAG}; "
        )

    def _required(self, name: str) -> str:
        """What CASCADE would create first: the extensions the control file requires (those
        this emulation stands in for by their scripts). The stand-in always cascades."""
        steps = []
        for required in requirements(name):
            if self.handles(required):
                steps.append(f"IF NOT ({_presence_test(self._defaults[required])}) THEN "
                             f"EXECUTE {_QUOTE_TAG}{self._defaults[required]}{_QUOTE_TAG}; "
                             f"{self._record(required, default_version(required))}END IF; ")
            else:
                steps.append(f"CREATE EXTENSION IF NOT EXISTS {required}; ")
        return "".join(steps)

    def drop_sql(self, name: str, if_exists: bool) -> str:
        script = self._defaults[name]
        missing = (
            f"RAISE NOTICE 'extension \"{name}\" does not exist, skipping'; RETURN;"
            if if_exists
            else f"RAISE EXCEPTION 'extension \"{name}\" does not exist' "
            "USING ERRCODE = 'undefined_object';"
        )
        return (
            f"DO {self.TAG} BEGIN "
            f"IF NOT ({_presence_test(script)}) THEN {missing} END IF; "
            f"{_drops(script)}"
            f"END {self.TAG}"
        )

    def _script(self, name: str, version: str) -> str:
        try:
            return install_script(name, version)
        except ExtensionInstallError as exc:
            # What PostgreSQL says; the DO block raises it in the client's session.
            return (f"DO $x$ BEGIN RAISE EXCEPTION '%', {_literal(str(exc))} "
                    "USING ERRCODE = '22023'; END $x$;")


def _created(kind: str, script: str) -> list[str]:
    pattern = rf"^CREATE\s+(?:OR\s+REPLACE\s+)?{kind}\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)"
    found = re.findall(pattern, script, flags=re.MULTILINE | re.IGNORECASE)
    return list(dict.fromkeys(found))


def _presence_test(script: str) -> str:
    schemas = _created("SCHEMA", script)
    if schemas:
        return f"pg_catalog.to_regnamespace('{schemas[0]}') IS NOT NULL"
    functions = _created("FUNCTION", script)
    if not functions:  # pragma: no cover - every extension creates a schema or a function
        raise ExtensionInstallError("cannot tell whether the extension exists")
    return f"pg_catalog.to_regproc('{functions[0]}') IS NOT NULL"


def _drops(script: str) -> str:
    """What dropping the extension removes: its schemas (with everything in them), the
    views, tables, functions it created outside them, its access methods (with their operator
    classes)."""
    schemas = _created("SCHEMA", script)
    statements = []
    if schemas:
        statements.append(f"DROP SCHEMA {', '.join(schemas)} CASCADE;")
    for kind in ("VIEW", "TABLE"):
        for relation in _created(kind, script):
            if "." not in relation or relation.split(".")[0] not in schemas:
                statements.append(f"DROP {kind} IF EXISTS {relation} CASCADE;")
    for method in _created("ACCESS\\s+METHOD", script):
        statements.append(f"DROP ACCESS METHOD IF EXISTS {method} CASCADE;")
    for function in _created("FUNCTION", script):
        if "." not in function or function.split(".")[0] not in schemas:
            statements.append(f"DROP FUNCTION IF EXISTS {function} CASCADE;")
    return " ".join(statements) + " "
