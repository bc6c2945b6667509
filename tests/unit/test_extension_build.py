"""The build of google_ml_integration's versioned scripts from emulator/sql/src/ (no server
needed; tests/extension/test_extension_sql.py runs what it builds)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pglast
import pytest
from pglast import ast
from pglast.enums import ObjectType

from emulator import extension_build, extension_files
from emulator.extension_build import ExtensionBuildError, parse_source
from emulator.extension_renewal import merge, split_sql

# AlloyDB's version numbers (../shared/reference/alloydb-ai-2026.md): the emulator invents none.
ALLOYDB_VERSIONS = {"1.2", "1.3", "1.4.2", "1.4.3", "1.4.5", "1.5.2", "1.5.3", "1.5.4", "1.5.6", "1.5.7",
                    "1.5.8", "1.5.9", "1.6.1", "1.6.4"}


def test_offered_versions_are_alloydb_numbers_oldest_first() -> None:
    assert set(extension_build.VERSIONS) <= ALLOYDB_VERSIONS
    keys = [extension_build.version_key(v) for v in extension_build.VERSIONS]
    assert keys == sorted(keys)
    assert extension_build.DEFAULT_VERSION == extension_build.VERSIONS[-1]
    assert "1.5.3" in extension_build.VERSIONS  # LangChain's pin


def test_every_block_names_an_alloydb_version() -> None:
    for block in extension_build.all_blocks():
        assert ".".join(map(str, block.version)) in ALLOYDB_VERSIONS, block.concern


def test_files_are_an_install_script_per_version_and_an_upgrade_per_step() -> None:
    files = extension_build.extension_files()
    versions = extension_build.VERSIONS
    expected = {"google_ml_integration.control"}
    expected |= {f"google_ml_integration--{v}.sql" for v in versions}
    expected |= {f"google_ml_integration--{a}--{b}.sql" for a, b in itertools.pairwise(versions)}
    assert set(files) == expected
    control = files["google_ml_integration.control"]
    assert f"default_version = '{extension_build.DEFAULT_VERSION}'" in control


def test_an_upgrade_script_has_exactly_the_blocks_between_its_versions() -> None:
    blocks = extension_build.all_blocks()
    script = extension_build.upgrade_script("1.5.3", "1.5.4")
    marks = re.findall(r"^-- ---- (\w+)\.sql, AlloyDB ([\d.]+) ----$", script, re.MULTILINE)
    assert marks == [(b.concern, "1.5.4") for b in blocks if b.version == (1, 5, 4)]
    assert script.count('\\echo Use "ALTER EXTENSION google_ml_integration UPDATE"') == 1


def test_an_install_script_has_every_block_up_to_its_version_in_concern_order() -> None:
    script = extension_build.install_script("1.5.4")
    marks = re.findall(r"^-- ---- (\w+)\.sql, AlloyDB ([\d.]+) ----$", script, re.MULTILINE)
    concerns = [m[0] for m in marks]
    order = list(extension_build.CONCERNS)
    assert concerns == sorted(concerns, key=order.index)
    assert {m[1] for m in marks} == {"1.2", "1.3", "1.4.2", "1.4.5", "1.5.2", "1.5.3", "1.5.4"}


def test_sql_before_the_first_marker_is_refused() -> None:
    with pytest.raises(ExtensionBuildError, match="before the first"):
        parse_source("x", "-- a comment\nCREATE TABLE t ();\n-- @version 1.5.2\n")


def test_blocks_going_back_in_version_are_refused() -> None:
    with pytest.raises(ExtensionBuildError, match="after a block of a later version"):
        parse_source("x", "-- @version 1.5.4\nSELECT 1;\n-- @version 1.5.2\nSELECT 2;\n")


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(ExtensionBuildError, match="not offered"):
        extension_build.install_script("1.5.5")


def test_every_source_file_is_listed_and_shipped() -> None:
    src = Path(extension_build.__file__).parent / "sql" / "src"
    assert {p.stem for p in src.glob("*.sql")} == set(extension_build.CONCERNS)
    pyproject = (Path(extension_build.__file__).parent.parent / "pyproject.toml").read_text()
    assert '"sql/src/*.sql"' in pyproject


def test_the_installer_writes_every_file_and_removes_stale_scripts(tmp_path: Path) -> None:
    (tmp_path / "share" / "extension").mkdir(parents=True)
    stale = tmp_path / "share" / "extension" / "google_ml_integration--1.5.7--1.5.8-old.sql"
    stale.write_text("-- left by an older release")
    other = tmp_path / "share" / "extension" / "vector--0.8.0.sql"
    other.write_text("-- not ours")
    pg_config = tmp_path / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {tmp_path / 'share'}\n")
    pg_config.chmod(0o755)
    target = extension_files.install_extension_files(pg_config)
    written = {p.name for p in target.iterdir()}
    for extension in extension_files.EXTENSIONS:
        assert set(extension.files()) <= written
    assert not stale.exists()
    assert other.exists()
    assert not any(".google-" in name for name in written)  # no pgvector here: no labels


def test_the_installer_names_pgvector_with_alloydbs_version(tmp_path: Path) -> None:
    """ai/measure-vector-query-recall's `vector` 0.8.0.google-3: an empty update script each way
    between the installed pgvector's default version and the label; scripts written for an
    older pgvector go."""
    extension_dir = tmp_path / "share" / "extension"
    extension_dir.mkdir(parents=True)
    (extension_dir / "vector.control").write_text("default_version = '0.8.6'\n")
    stale = extension_dir / "vector--0.8.5--0.8.0.google-3.sql"
    stale.write_text("-- written for an older pgvector")
    pgvector_own = extension_dir / "vector--0.8.5--0.8.6.sql"
    pgvector_own.write_text("-- pgvector's")
    pg_config = tmp_path / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {tmp_path / 'share'}\n")
    pg_config.chmod(0o755)
    extension_files.install_extension_files(pg_config)
    for label in ("0.8.0.google-3", "0.8.0.google-4", "0.8.1.google-1", "0.8.2.google-1"):
        for name in (f"vector--0.8.6--{label}.sql", f"vector--{label}--0.8.6.sql"):
            assert (extension_dir / name).read_text().startswith(f"-- vector {label} is")
    assert not stale.exists()
    assert pgvector_own.exists()


def test_the_stand_in_script_of_a_version_is_that_version() -> None:
    script = extension_files.install_script("google_ml_integration", "1.5.3")
    assert "google_ml_integration 1.5.3" in script
    assert "\\echo" not in script and "pg_extension_config_dump" not in script
    with pytest.raises(extension_files.ExtensionInstallError, match="nor update path"):
        extension_files.install_script("google_ml_integration", "9.9")


# -- the build's fingerprint and the renewal in place (emulator/extension_renewal.py) -----------


def test_each_script_ends_with_the_fingerprint_of_the_version_it_leaves() -> None:
    files = extension_build.extension_files()
    for name, content in files.items():
        if not name.endswith(".sql"):
            continue
        version = name.removesuffix(".sql").split("--")[-1]
        fingerprint = extension_build.version_parts(version).fingerprint()
        assert re.search(r"CREATE OR REPLACE FUNCTION google_ml\._emulator_build\(\)\n.*\n"
                         rf"AS \$\$ SELECT '{fingerprint}'::text \$\$;\n\Z", content), name


def test_a_renewal_script_renews_only_what_can_be_renewed_in_place() -> None:
    for extension, version in [(e, v) for e in extension_files.renewables() for v in e.versions]:
        script = extension.script(version)
        body = script.split("\\quit\n", 1)[1]
        views: list[str] = []
        for raw in pglast.parse_sql(body):
            node = raw.stmt
            if isinstance(node, ast.CreateFunctionStmt | ast.ViewStmt):
                assert node.replace, version
                if isinstance(node, ast.ViewStmt):
                    assert node.view is not None
                    views.append(f"{node.view.schemaname}.{node.view.relname}")
            elif isinstance(node, ast.DefineStmt):
                assert node.kind == ObjectType.OBJECT_AGGREGATE and node.replace
            elif isinstance(node, ast.GrantStmt):
                assert not node.is_grant, "a GRANT could undo a user's REVOKE"
            elif isinstance(node, ast.DropStmt):  # no CREATE OR REPLACE EVENT TRIGGER
                assert node.removeType == ObjectType.OBJECT_EVENT_TRIGGER and node.missing_ok
            elif isinstance(node, ast.CreateEventTrigStmt):
                assert (node.trigname or "").startswith("google_ml_"), node.trigname
            else:
                assert isinstance(node, ast.CommentStmt | ast.DoStmt), type(node).__name__
        assert len(views) == len(set(views)), f"{version}: a view defined twice"


def test_the_fingerprint_tells_a_changed_function_from_a_changed_table() -> None:
    def parts(sql: str) -> dict[str, str]:
        fingerprint = merge([split_sql(sql)]).fingerprint()
        return dict(item.split("=") for item in fingerprint.split())

    table = "CREATE TABLE google_ml.t (a int);\nGRANT SELECT ON google_ml.t TO PUBLIC;\n"
    function = "CREATE FUNCTION google_ml.f() RETURNS int LANGUAGE sql AS $$ SELECT {} $$;\n"
    renewed = function.format(1).replace("CREATE", "CREATE OR REPLACE").removesuffix(";\n")
    assert split_sql(function.format(1)) == (((renewed, None),), ())
    first = parts(table + function.format(1))
    body_changed = parts(table + function.format(2))
    table_changed = parts(table.replace("a int", "a int, b int") + function.format(1))
    assert body_changed["code"] != first["code"] and body_changed["schema"] == first["schema"]
    assert table_changed["code"] == first["code"] and table_changed["schema"] != first["schema"]


def test_an_array_default_in_a_signature_is_renewable() -> None:
    # libpg_query records an ARRAY[...]'s bounds (list_start, list_end), which OR REPLACE moves
    # (alloydb_scann's evaluate_query_recall has index_methods text[] DEFAULT ARRAY['scann'])
    (renewed, _view), = split_sql(
        "CREATE FUNCTION f(m text[] DEFAULT ARRAY['scann']) RETURNS int "
        "LANGUAGE sql AS $$ SELECT 1 $$;")[0]
    assert renewed.startswith("CREATE OR REPLACE FUNCTION f(m text[] DEFAULT ARRAY['scann'])")


def test_a_view_is_renewed_in_its_last_definition_only() -> None:
    # An older definition would drop the columns a later one added (CREATE OR REPLACE VIEW
    # refuses that); a function's definitions all run, in order.
    older = split_sql("CREATE VIEW s.v AS SELECT 1 AS a;")
    newer = split_sql("CREATE OR REPLACE VIEW s.v AS SELECT 1 AS a, 2 AS b;")
    assert merge([older, newer]).code == ("CREATE OR REPLACE VIEW s.v AS SELECT 1 AS a, 2 AS b",)


def test_hand_written_extensions_carry_their_fingerprint() -> None:
    renewable = {e.name: e for e in extension_files.renewables()}
    assert set(renewable) >= {"google_ml_integration", "alloydb_ai_nl", "alloydb_ai_emulator",
                              "alloydb_scann"}
    # no schema of its own: the fingerprint goes where CREATE EXTENSION puts its objects
    assert renewable["alloydb_scann"].function == "_alloydb_scann_emulator_build"
    scann_script = extension_files.ShippedExtension("alloydb_scann").files()[
        "alloydb_scann--0.1.3.sql"]
    assert scann_script.rstrip().endswith(
        f"SELECT '{renewable['alloydb_scann'].expected('0.1.3')}'::text $$;")
    nl = renewable["alloydb_ai_nl"]
    assert nl.function == "alloydb_ai_nl._emulator_build"
    for version in nl.versions:
        script = extension_files.ShippedExtension("alloydb_ai_nl").files()[
            f"alloydb_ai_nl--{version}.sql"]
        assert script.rstrip().endswith(f"SELECT '{nl.expected(version)}'::text $$;")
        assert "DROP FUNCTION %s" in nl.script(version)
