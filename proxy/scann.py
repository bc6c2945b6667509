"""alloydb_scann through the proxy: ScaNN's index options and ``scann.*`` settings.

Plan
----
The emulated ``scann`` access method is pgvector's HNSW handler under AlloyDB's name
(``emulator/sql/alloydb_scann--*.sql``). PostgreSQL hands an index's ``WITH (...)`` options to
the handler, and pgvector's handler knows only its own (``m``, ``ef_construction``): it would
refuse ``num_leaves``. No SQL-level hook runs before that check (an event trigger at
``ddl_command_start`` cannot change the statement), so the proxy does it, from the parse tree:

* ``CREATE INDEX ... USING scann ... WITH (...)``: every option is checked against AlloyDB's
  documented ones (name, type, range, allowed values, the AUTO/MANUAL rules). Valid options are
  taken out of the text (the ``WITH (...)`` span is cut, and the result parsed again to make sure
  only the options changed); an invalid one turns the statement into a ``DO`` block that raises
  the error AlloyDB's extension raises (PostgreSQL's own reloption messages, SQLSTATE 22023).
* The same statement, unless ``CONCURRENTLY`` or sent with a DO block of the client's, runs
  inside a ``DO`` block (its tag renamed back to ``CREATE INDEX``) that records the options for
  the ``pg_stat_ann_indexes`` view, and gives a column of more than 2,000 dimensions, which
  pgvector's HNSW cannot index, an index of that name all the same: one on the column cast to
  ``halfvec`` (up to 4,000 dimensions), with a NOTICE saying that ``ORDER BY col <=> q`` will not
  use it (docs/differences.md).
* ``ALTER INDEX i SET (auto_maintenance = on)`` and other ScaNN options: checked, then a ``DO``
  block leaves a ScaNN index as it is and runs the statement as written for any other relation.
* ``TRUNCATE`` (not beside a DO block of the client's) runs in a ``DO`` block that first asks
  alloydb_scann (``_scann_check_truncate``) whether a truncated table has a ScaNN index: AlloyDB
  refuses that with its empty-table error (troubleshoot/troubleshoot-scann-indexes, query example
  B), since TRUNCATE rebuilds the index on the emptied table. Then the statement runs as written.
* ``SET [LOCAL] scann.satisfy_limit = relaxed_order``: also sets pgvector's
  ``hnsw.iterative_scan``, so the HNSW scan goes on until the ``LIMIT`` is met, as AlloyDB's
  setting does for ScaNN (without it an HNSW scan returns at most ``hnsw.ef_search`` rows).
* ``SET [LOCAL] scann.x = v`` (also in ``ALTER DATABASE/ROLE ... SET``; not ``ALTER SYSTEM``, which
  cannot run in the DO block an error needs): AlloyDB's
  library reserves the ``scann`` prefix and declares its settings, so an unknown name or a bad
  value is an error there; stock PostgreSQL would accept any placeholder. The documented
  settings are checked the same way; the others raise PostgreSQL's reserved-prefix error.

Statements on a database without ``alloydb_scann`` keep PostgreSQL's own answer: the error
block first checks that the access method exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.enums import (
    A_Expr_Kind,
    AlterTableType,
    DropBehavior,
    MinMaxOp,
    ObjectType,
    VariableSetKind,
)
from pglast.parser import scan

from proxy.statements import Splice

ACCESS_METHOD = "scann"
_INT_MAX = 2_147_483_647


class ScannError(Exception):
    """A statement AlloyDB refuses: raised again by PostgreSQL with these fields."""

    def __init__(self, sqlstate: str, message: str, detail: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate, self.message, self.detail, self.hint = sqlstate, message, detail, hint


@dataclass(frozen=True, slots=True)
class IntOption:
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class RealOption:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class EnumOption:
    values: tuple[str, ...]  # as documented; compared without regard to case


@dataclass(frozen=True, slots=True)
class BoolOption:
    pass


OptionSpec = IntOption | RealOption | EnumOption | BoolOption

# Index options: pages ai/create-scann-index, ai/maintain-vector-indexes,
# reference/ai/scann-index-reference. LangChain's ScaNNIndex writes ``quantizer = sq8``.
INDEX_OPTIONS: dict[str, OptionSpec] = {
    "mode": EnumOption(("AUTO", "AUTOMATIC", "MANUAL")),  # AUTOMATIC: ai/maintain-vector-indexes
    "optimization": EnumOption(("SEARCH_OPTIMIZED", "BALANCED")),
    # PostgreSQL 17 and later; alloydb_scann refuses more than 30 million on an older server
    # (_scann_check_num_leaves: ai/best-practices-tuning-scann, "Limitations")
    "num_leaves": IntOption(1, 100_000_000),
    "quantizer": EnumOption(("SQ8", "AH", "FLAT")),
    "max_num_levels": IntOption(1, 3),
    "auto_maintenance": BoolOption(),
}
_MANUAL_ONLY = ("num_leaves", "quantizer", "max_num_levels")

# Settings (GUCs) the same pages document. Ranges not stated there are PostgreSQL's int range.
SETTINGS: dict[str, OptionSpec] = {
    "scann.num_leaves_to_search": IntOption(0, _INT_MAX),
    "scann.pre_reordering_num_neighbors": IntOption(-1, _INT_MAX),
    "scann.pct_leaves_to_search": RealOption(0.0, 100.0),
    "scann.max_allowed_num_levels": IntOption(1, 3),
    "scann.max_background_workers": IntOption(0, _INT_MAX),
    "scann.maintenance_background_naptime_s": IntOption(0, _INT_MAX),
    "scann.allow_blocked_operations": BoolOption(),
    "scann.enable_preview_features": BoolOption(),
    "scann.enable_zero_knob_index_creation": BoolOption(),
    "scann.enable_index_maintenance": BoolOption(),
    # reference/ai/scann-index-reference
    "scann.enable_pca": BoolOption(),
    "scann.num_search_threads": IntOption(1, _INT_MAX),
    "scann.satisfy_limit": EnumOption(("OFF", "RELAXED_ORDER", "STRICT_ORDER")),
    "scann.max_pct_leaves_to_search": RealOption(0.0, 100.0),
    # AlloyDB's release notes (2025-02-25): inline filtering, "For more information about
    # scann.enable_inline_filtering, see ScaNN index reference."
    "scann.enable_inline_filtering": BoolOption(),
}

# PostgreSQL's spellings of a boolean setting, lowercased and trimmed (rewrites.py's SHOW reads
# a google_ml_integration.* flag with them too, as the extension's _parse_bool does).
BOOL_TRUE = frozenset({"on", "true", "yes", "1", "t", "y", "tr", "tru", "ye"})
BOOL_FALSE = frozenset({"off", "false", "no", "0", "f", "n", "fa", "fal", "fals", "of"})


def parse_bool(text: str) -> bool | None:
    """PostgreSQL's parse_bool: a prefix of true, false, yes or no, of on or off from two
    letters, or 1 or 0, in any case; None for anything else."""
    lowered = text.lower()
    return True if lowered in BOOL_TRUE else False if lowered in BOOL_FALSE else None


@dataclass(slots=True)
class ScannPlan:
    splices: list[Splice]
    rename_tag: tuple[bytes, bytes] | None = None  # (server's tag, tag the client expects)
    # A statement to run first, as a Query of its own on the client's session (the relay's
    # prelude, proxy/session.py): for what must be checked or prepared before a statement that
    # cannot run in a DO block (CREATE INDEX CONCURRENTLY). Its error stands for the statement's.
    prelude: str | None = None
    # A HINT for an error PostgreSQL raises without a position: (SQLSTATE, a part of its
    # message, the hint); rewrites.py makes an ErrorHint of it
    hint: tuple[str, str, str] | None = None
    # The HINT stands in for PostgreSQL's own (which would mislead)
    hint_replaces: bool = False


def plan_scann(sql: str, stmt: Any, start: int, end: int, *, tags_renamable: bool) -> ScannPlan:
    """What to change in the statement ``sql[start:end]`` (nothing for most statements).
    ``tags_renamable``: no statement of the client's in ``sql`` is a DO block, so the server's
    ``DO`` tags can be renamed back (the relay renames the next ``DO`` tag it sees)."""
    try:
        if isinstance(stmt, ast.IndexStmt) and stmt.accessMethod == ACCESS_METHOD:
            return _plan_index(sql, stmt, start, end, tags_renamable)
        if _is_scann_alter_index(stmt):
            return _plan_alter_index(sql, stmt, start, end, tags_renamable)
        if isinstance(stmt, ast.TruncateStmt) and tags_renamable:
            return _plan_truncate(sql, stmt, start, end)
    except ScannError as err:
        return ScannPlan([Splice(start, end, raise_block(err))])
    setting = _variable_set(stmt)
    if setting is None or not (setting.name or "").lower().startswith("scann."):
        return ScannPlan([])
    if setting.kind != VariableSetKind.VAR_SET_VALUE:
        return ScannPlan([])
    try:
        check_setting(setting.name.lower(), [arg_text(a) for a in setting.args or ()])
    except ScannError as err:
        # Without alloydb_scann the prefix is not reserved: the statement runs as written.
        tag = b"ALTER DATABASE" if isinstance(stmt, ast.AlterDatabaseSetStmt) else (
            b"ALTER ROLE" if isinstance(stmt, ast.AlterRoleSetStmt) else b"SET")
        block = raise_block(err, otherwise=sql[start:end])
        return ScannPlan([Splice(start, end, block)], (b"DO", tag) if tags_renamable else None)
    if setting.name.lower() == SATISFY_LIMIT and isinstance(stmt, ast.VariableSetStmt) \
            and tags_renamable:
        value = str(arg_text((setting.args or (None,))[0])).lower()
        block = _satisfy_limit_block(sql[start:end], value, bool(setting.is_local))
        return ScannPlan([Splice(start, end, block)], (b"DO", b"SET"))
    return ScannPlan([])


# scann.satisfy_limit keeps a vector scan going until the LIMIT is met: what pgvector's
# hnsw.iterative_scan does for the HNSW graph under an emulated ScaNN index.
SATISFY_LIMIT = "scann.satisfy_limit"


def _satisfy_limit_block(original: str, value: str, is_local: bool) -> str:
    """SET scann.satisfy_limit, and pgvector's hnsw.iterative_scan to the same value (only
    where alloydb_scann is installed; elsewhere the statement runs as written)."""
    local = "true" if is_local else "false"
    return (
        "DO $alloydb_scann$ BEGIN "
        "IF NOT EXISTS (SELECT FROM pg_catalog.pg_am WHERE amname = 'scann') THEN "
        f"EXECUTE {sql_literal(original)}; RETURN; END IF; "
        f"PERFORM pg_catalog.set_config('{SATISFY_LIMIT}', {sql_literal(value)}, {local}); "
        # reading a vector loads pgvector; only 0.8 and later have the setting (an older one
        # reserves the hnsw prefix, so setting an unknown name there would fail)
        "IF pg_catalog.to_regtype('vector') IS NOT NULL THEN EXECUTE pg_catalog.format("
        "'SELECT %L::%s', '[1]', pg_catalog.to_regtype('vector')); END IF; "
        "IF EXISTS (SELECT FROM pg_catalog.pg_settings WHERE name = 'hnsw.iterative_scan') THEN "
        f"PERFORM pg_catalog.set_config('hnsw.iterative_scan', {sql_literal(value)}, {local}); "
        "END IF; END $alloydb_scann$"
    )


def _variable_set(stmt: Any) -> Any:
    if isinstance(stmt, ast.VariableSetStmt):
        return stmt
    if isinstance(stmt, (ast.AlterDatabaseSetStmt, ast.AlterRoleSetStmt)):
        return stmt.setstmt
    return None  # ALTER SYSTEM cannot run inside the DO block an error needs


# -- index options ----------------------------------------------------------------------------


def check_index_options(options: list[tuple[str, str | None]]) -> None:
    """Raise ``ScannError`` as AlloyDB would for these ``WITH (...)`` options."""
    given: dict[str, str | None] = {}
    for name, value in options:
        spec = INDEX_OPTIONS.get(name)
        if spec is None:
            raise ScannError("22023", f'unrecognized parameter "{name}"')
        if name in given:
            raise ScannError("22023", f'parameter "{name}" specified more than once')
        check_value(spec, name, value, option=True)
        given[name] = value
    mode = (given.get("mode") or "").upper()
    if mode in ("AUTO", "AUTOMATIC"):
        for name in _MANUAL_ONLY:
            if name in given:
                raise ScannError(
                    "22023", f'option "{name}" cannot be set when mode is AUTO',
                    hint="Use mode = 'MANUAL' to choose the index's tuning parameters.")
    elif "optimization" in given:
        raise ScannError("22023", 'option "optimization" requires mode = \'AUTO\'',
                         hint="Add mode = 'AUTO' to the index's WITH clause.")


def check_setting(name: str, values: list[str | None]) -> None:
    spec = SETTINGS.get(name)
    if spec is None:
        raise ScannError("42602", f'invalid configuration parameter name "{name}"',
                         detail='"scann" is a reserved prefix.')
    if len(values) != 1:
        raise ScannError("22023", f"SET {name} takes only one argument")
    check_value(spec, name, values[0], option=False)


def check_value(spec: OptionSpec, name: str, value: str | None, *, option: bool) -> None:
    if isinstance(spec, BoolOption):
        if value is not None and parse_bool(value) is None:
            if option:
                raise ScannError("22023", f'invalid value for boolean option "{name}": {value}')
            raise ScannError("22023", f'parameter "{name}" requires a Boolean value')
        return
    if value is None:
        raise ScannError("22023", f'invalid value for option "{name}": no value given')
    if isinstance(spec, EnumOption):
        if value.upper() not in spec.values and not option:
            raise ScannError("22023", f'invalid value for parameter "{name}": "{value}"',
                             hint="Available values: "
                             + ", ".join(v.lower() for v in spec.values) + ".")
        if value.upper() not in spec.values:
            listed = ", ".join(f'"{v}"' for v in spec.values[:-1]) + f' and "{spec.values[-1]}"'
            raise ScannError("22023", f'invalid value for enum option "{name}": {value}',
                             detail=f"Valid values are {listed}.")
        return
    if isinstance(spec, IntOption) and not option:
        setting = guc_int(value)
        if setting is None:
            raise ScannError("22023", f'invalid value for parameter "{name}": "{value}"')
        if not spec.low <= setting <= spec.high:
            raise ScannError("22023", f'{setting} is outside the valid range for parameter '
                             f'"{name}" ({spec.low} .. {spec.high})')
        return
    number: float
    try:
        number = int(value) if isinstance(spec, IntOption) else float(value)
    except ValueError:
        kind = "integer" if isinstance(spec, IntOption) else "floating point"
        if option:
            raise ScannError("22023", f'invalid value for {kind} option "{name}": {value}') from None
        raise ScannError("22023", f'invalid value for parameter "{name}": "{value}"') from None
    if not spec.low <= number <= spec.high:
        if option:
            raise ScannError("22023", f'value {value} out of bounds for option "{name}"',
                             detail=f'Valid values are between "{spec.low}" and "{spec.high}".')
        raise ScannError(
            "22023",
            f'{value} is outside the valid range for parameter "{name}" ({spec.low} .. {spec.high})')


_SPACE = " \t\n\v\f\r"  # C's isspace
_STRTOL = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_LONG_MAX = 2**63 - 1


def guc_int(text: str) -> int | None:
    """An integer setting's value as PostgreSQL reads it (guc.c's parse_int, for a setting
    without units), or None where it refuses it: C's strtol in base 0 (``0x10`` is 16, ``010``
    is 8), or strtod where that stops at a ``.`` or an ``e`` (``2.5``, ``1e2``), rounded half to
    even; spaces around it; within int's range. Hexadecimal floats are not read (refused)."""
    body = text.lstrip(_SPACE)
    match = _STRTOL.match(body)
    end = match.end() if match else 0
    number: float | None = None
    if match and body[end:end + 1] not in (".", "e", "E"):
        digits = match.group().lstrip("+-")
        sign = -1 if match.group().startswith("-") else 1
        if digits[:2] in ("0x", "0X"):
            whole = int(digits, 16)  # Python reads the 0x prefix in base 16
        elif digits.startswith("0"):
            whole = int(digits, 8)
        else:
            whole = int(digits)
        if whole <= _LONG_MAX:  # else ERANGE: read again by strtod
            number = sign * whole
    if number is None:
        # strtol converting nothing leaves its end at the text's very start: strtod reads it
        # again only if that is a point (not a space or sign: " .5" and "-.5" are refused)
        if match is None and not text.startswith("."):
            return None
        found = _STRTOD.match(body)
        if found is None:
            return None
        end = found.end()
        number = float(found.group())
        mantissa = found.group().lower().split("e")[0]
        if number in (float("inf"), float("-inf")) or (
                number == 0 and mantissa.strip("+-0.") != ""):  # ERANGE
            return None
    if body[end:].strip(_SPACE):
        return None  # a unit, or anything else after the number
    rounded = round(number)  # rint: half to even
    return rounded if -(2**31) <= rounded <= 2**31 - 1 else None


def arg_text(node: Any) -> str | None:
    """A DefElem argument or SET value as the text PostgreSQL's option parser would see."""
    if node is None:
        return None
    if isinstance(node, ast.A_Const):
        return None if node.isnull else arg_text(node.val)
    if isinstance(node, ast.Integer):
        return str(node.ival)
    if isinstance(node, ast.Float):
        return str(node.fval)
    if isinstance(node, ast.Boolean):
        return "true" if node.boolval else "false"
    if isinstance(node, ast.String):
        return str(node.sval)
    if isinstance(node, ast.TypeName):  # a bare word: WITH (quantizer = sq8)
        return ".".join(str(n.sval) for n in node.names or ())
    raise ScannError("22023", "unsupported value in the index's WITH clause")


# -- ALTER INDEX ... SET (auto_maintenance = on) ---------------------------------------------


def _is_scann_alter_index(stmt: Any) -> bool:
    """``ALTER INDEX i SET (...)`` naming only ScaNN options (pgvector's own, such as ``m``,
    go to PostgreSQL as written), or ``ALTER INDEX i RESET (...)`` (ai/create-scann-index's
    conversion of a manually tuned index to an automatically tuned one resets ``num_leaves`` and
    ``quantization``), or both."""
    if not isinstance(stmt, ast.AlterTableStmt) or stmt.objtype != ObjectType.OBJECT_INDEX:
        return False
    cmds = list(stmt.cmds or ())
    return bool(cmds) and all(
        c.def_ and (c.subtype == AlterTableType.AT_ResetRelOptions
                    or (c.subtype == AlterTableType.AT_SetRelOptions
                        and all(d.defname in INDEX_OPTIONS for d in c.def_)))
        for c in cmds)


def _plan_alter_index(sql: str, stmt: Any, start: int, end: int, tags_renamable: bool) -> ScannPlan:
    """A ScaNN index takes the options (checked, without effect on the HNSW graph) into the
    configuration pg_stat_ann_indexes shows (``_scann_alter_options``, which also refuses a
    caller who does not own the index, as PostgreSQL does); any other relation gets
    PostgreSQL's own answer to the statement as written."""
    given: list[str] = []
    reset: list[str] = []
    for cmd in stmt.cmds:
        for d in cmd.def_:
            if cmd.subtype == AlterTableType.AT_ResetRelOptions:
                reset.append(str(d.defname))
                continue
            value = arg_text(d.arg)
            check_value(INDEX_OPTIONS[d.defname], d.defname, value, option=True)
            given.append(f"{d.defname}={'true' if value is None else value}")
    relation = relation_text(stmt.relation)
    original = sql[start:end]
    if _TAG in original:
        return ScannPlan([])
    block = (
        f"DO {_TAG} DECLARE ext name; idx regclass; BEGIN "
        f"idx := pg_catalog.to_regclass({sql_literal(relation)}); "
        "IF NOT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am a "
        "ON a.oid = c.relam WHERE a.amname = 'scann' AND c.oid = idx) THEN "
        f"EXECUTE {sql_literal(original)}; RETURN; END IF; "
        "SELECT n.nspname INTO ext FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'alloydb_scann'; "
        "IF ext IS NOT NULL AND pg_catalog.to_regprocedure(pg_catalog.format("
        "'%I._scann_alter_options(regclass, text[], text[], name)', ext)) IS NOT NULL THEN "
        "EXECUTE pg_catalog.format('SELECT %I._scann_alter_options($1, $2, $3, $4)', ext) "
        f"USING idx, {_text_array(given)}, {_text_array(reset)}, current_user; END IF; "
        f"END {_TAG}"
    )
    return ScannPlan([Splice(start, end, block)], (b"DO", b"ALTER INDEX") if tags_renamable else None)


# -- TRUNCATE ---------------------------------------------------------------------------------


def _plan_truncate(sql: str, stmt: Any, start: int, end: int) -> ScannPlan:
    """TRUNCATE in a DO block that first lets alloydb_scann refuse it, as AlloyDB does, when a
    truncated table has a ScaNN index (``_scann_check_truncate``); then runs it as written. The
    tables the caller may not truncate are left to PostgreSQL's own error."""
    original = sql[start:end]
    if _TAG in original or _INNER in original:
        return ScannPlan([])
    tables = ", ".join(
        "(SELECT r.rel::pg_catalog.oid "
        f"FROM pg_catalog.to_regclass({sql_literal(relation_text(rel))}) AS r(rel) "
        "WHERE pg_catalog.has_table_privilege(r.rel, 'TRUNCATE'))"
        for rel in stmt.relations)
    descendants = ", ".join("true" if rel.inh else "false" for rel in stmt.relations)
    cascade = "true" if stmt.behavior == DropBehavior.DROP_CASCADE else "false"
    block = (
        f"DO {_TAG} DECLARE ext name; BEGIN "
        "SELECT n.nspname INTO ext FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'alloydb_scann'; "
        "IF ext IS NOT NULL AND pg_catalog.to_regprocedure(pg_catalog.format("
        "'%I._scann_check_truncate(oid[], boolean[], boolean)', ext)) IS NOT NULL THEN "
        "EXECUTE pg_catalog.format('SELECT %I._scann_check_truncate($1, $2, $3)', ext) "
        f"USING ARRAY[{tables}]::oid[], ARRAY[{descendants}]::boolean[], {cascade}; END IF; "
        f"EXECUTE {_INNER}{original}{_INNER}; END {_TAG}"
    )
    return ScannPlan([Splice(start, end, block)], (b"DO", b"TRUNCATE TABLE"))


# -- CREATE INDEX ... USING scann ------------------------------------------------------------


def _plan_index(sql: str, stmt: Any, start: int, end: int, tags_renamable: bool) -> ScannPlan:
    options = [(o.defname, arg_text(o.arg)) for o in stmt.options or ()]
    check_index_options(options)
    hint = _opclass_hint(stmt)
    # PostgreSQL's own HINT there says to define a default operator class
    replaces = hint is not None and hint[1].startswith("no default")
    text = sql[start:end]
    if options:
        span = with_span(text)
        if span is None:  # cannot find it for sure: PostgreSQL will say what is wrong
            return ScannPlan([], hint=hint, hint_replaces=replaces)
        rest = text[span[1]:].lstrip()
        text = text[: span[0]].rstrip() + (" " + rest if rest else "")
        if not same_index(stmt, text, []):
            return ScannPlan([], hint=hint, hint_replaces=replaces)
    config = [f"{name}={value}" for name, value in options]
    if tags_renamable and not stmt.concurrent:
        block = _create_block(stmt, text, config)
        if block is not None:
            return ScannPlan([Splice(start, end, block)], (b"DO", b"CREATE INDEX"), hint=hint,
                                 hint_replaces=replaces)
    prelude = _concurrent_check(stmt, config) if stmt.concurrent else None
    return ScannPlan([Splice(start, end, text)], prelude=prelude, hint=hint,
                     hint_replaces=replaces)


# ScaNN's operator classes, as ai/create-scann-index names them (``USING scann
# (EMBEDDING_COLUMN DISTANCE_FUNCTION)``, "l2, dot_product or cosine"), for pgvector's names,
# which many scripts write after ``USING scann`` (audit7/audit9: no page shows AlloyDB taking
# them). PostgreSQL's error stays; the HINT names the class to write.
_PGVECTOR_NAMES = {"vector_cosine_ops": "cosine", "vector_l2_ops": "l2",
                   "vector_ip_ops": "dot_product"}


def _opclass_hint(stmt: Any) -> tuple[str, str, str] | None:
    """The HINT for PostgreSQL's 42704 on a ScaNN index written with one of pgvector's
    operator class names (``operator class "vector_cosine_ops" does not exist for access method
    "scann"``), or with none (``data type vector has no default operator class for access method
    "scann"``: no page gives ScaNN a default distance, audit5)."""
    for param in stmt.indexParams or ():
        name = str(param.opclass[-1].sval) if param.opclass else None
        column = param.name or "embedding"
        if not re.fullmatch(r"[a-z_][a-z0-9_$]*", column):
            column = quote_ident(column)
        if name in _PGVECTOR_NAMES:
            hint = (f"ScaNN's operator classes are cosine, l2 and dot_product "
                    f"(ai/create-scann-index): USING scann ({column} {_PGVECTOR_NAMES[name]}). "
                    f"{name} is pgvector's name (hnsw, ivfflat).")
            return ("42704", f'operator class "{name}" does not exist for access method "scann"',
                    hint)
        if name is None:
            hint = (f"A ScaNN index names its distance: one of the operator classes cosine, l2 "
                    f"and dot_product (ai/create-scann-index), as in USING scann ({column} "
                    f"cosine).")
            return "42704", 'no default operator class for access method "scann"', hint
    return None


def _concurrent_check(stmt: Any, config: list[str]) -> str | None:
    """The prelude of ``CREATE INDEX CONCURRENTLY ... USING scann``: the row checks the DO block
    of a plain CREATE INDEX runs after the build (``_scann_record_index``), run before it by
    ``_scann_check_new_index``, which leaves to PostgreSQL every statement it would refuse before
    building. Inside a transaction it raises PostgreSQL's own refusal (``IN_TRANSACTION_REFUSAL``).
    None when the check cannot be written."""
    params: list[Any] = list(stmt.indexParams or ())
    if not params:
        return None
    columns = [p.name for p in params]
    opclasses = [str(p.opclass[-1].sval) if p.opclass else None for p in params]
    name = "NULL::name" if stmt.idxname is None else f"{sql_literal(stmt.idxname)}::name"
    arguments = ", ".join([
        name, "tbl", _text_array(config),
        sql_literal(index_name_addition(params + list(stmt.indexIncludingParams or ()))),
        _text_array(columns), _text_array(opclasses), "current_user"])
    relation = sql_literal(relation_text(stmt.relation))
    if _TAG in arguments or _TAG in relation:
        return None
    return (
        f"DO {_TAG} DECLARE ext name; tbl oid; BEGIN "
        f"{IN_TRANSACTION_REFUSAL} "
        "SELECT n.nspname INTO ext FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'alloydb_scann'; "
        f"tbl := pg_catalog.to_regclass({relation}); "
        "IF ext IS NULL OR tbl IS NULL OR pg_catalog.to_regprocedure(pg_catalog.format("
        "'%I._scann_check_new_index(name, oid, text[], text, text[], text[], name)', ext)) "
        "IS NULL THEN RETURN; END IF; "
        "EXECUTE pg_catalog.format("
        "'SELECT %I._scann_check_new_index($1, $2, $3, $4, $5, $6, $7)', ext) "
        f"USING {arguments}; END {_TAG}"
    )


# The first check of a prelude of CREATE INDEX CONCURRENTLY: PostgreSQL's own refusal inside a
# transaction, where ``now()`` (the transaction's start) is older than the statement. The prelude
# must not end a transaction of the client's (its Query would commit it), and the statement would
# fail there with this error anyway (in a pipeline PostgreSQL words it "cannot be executed within
# a pipeline").
IN_TRANSACTION_REFUSAL = (
    "IF pg_catalog.now() <> pg_catalog.statement_timestamp() THEN RAISE EXCEPTION USING "
    "ERRCODE = 'active_sql_transaction', "
    "MESSAGE = 'CREATE INDEX CONCURRENTLY cannot run inside a transaction block'; END IF;")
_NAMEDATALEN = 64


def index_name_addition(params: list[Any]) -> str:
    """PostgreSQL's ChooseIndexNameAddition of ChooseIndexColumnNames: the index's column names
    (an expression's as FigureIndexColname names it, else ``expr``; a repeated name numbered),
    joined by ``_`` until 64 bytes or more. The SQL side (``_scann_index_name``) makes the index
    name of it."""
    names: list[str] = []
    for param in params:
        figured = None if param.expr is None else _figure_colname(param.expr)[1]
        original = str(param.name) if param.name else figured or "expr"
        current, number = original, 0
        while current in names:
            number += 1
            suffix = str(number)
            current = _clip(original, _NAMEDATALEN - 1 - len(suffix)) + suffix
        names.append(current)
    joined = b""
    for name in names:
        if joined:
            joined += b"_"
        joined += name.encode("utf-8")[: _NAMEDATALEN - 1]
        if len(joined) >= _NAMEDATALEN:
            break
    return joined.decode("utf-8", "ignore")


def _figure_colname(node: Any) -> tuple[int, str | None]:
    """PostgreSQL's FigureColnameInternal for an index expression (transformIndexStmt names an
    expression's column so): a strength (2 a sure name, 1 a fallback, 0 none) and the name. The
    kinds of expression an index may hold; any other has none ("expr")."""
    if isinstance(node, ast.ColumnRef):
        last = (node.fields or (None,))[-1]
        return (2, str(last.sval)) if isinstance(last, ast.String) else (0, None)
    if isinstance(node, ast.A_Indirection):
        last = (node.indirection or (None,))[-1]
        if isinstance(last, ast.String):
            return 2, str(last.sval)
        return _figure_colname(node.arg)
    if isinstance(node, ast.FuncCall):
        return 2, str((node.funcname or (ast.String(sval="expr"),))[-1].sval)
    if isinstance(node, ast.A_Expr):
        return (2, "nullif") if node.kind == A_Expr_Kind.AEXPR_NULLIF else (0, None)
    if isinstance(node, ast.TypeCast):
        strength, name = _figure_colname(node.arg)
        if strength <= 1 and node.typeName is not None and node.typeName.names:
            return 1, str(node.typeName.names[-1].sval)
        return strength, name
    if isinstance(node, ast.CollateClause):
        return _figure_colname(node.arg)
    if isinstance(node, ast.CaseExpr):
        strength, name = (0, None) if node.defresult is None else _figure_colname(node.defresult)
        return (1, "case") if strength <= 1 else (strength, name)
    if isinstance(node, ast.A_ArrayExpr):
        return 1, "array"
    if isinstance(node, ast.RowExpr):
        return 1, "row"
    if isinstance(node, ast.CoalesceExpr):
        return 2, "coalesce"
    if isinstance(node, ast.MinMaxExpr):
        return 2, "greatest" if node.op == MinMaxOp.IS_GREATEST else "least"
    return 0, None


def _clip(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` UTF-8 bytes (pg_mbcliplen)."""
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


def with_span(text: str) -> tuple[int, int] | None:
    """The span of the top-level ``WITH ( ... )`` clause of a CREATE INDEX statement."""
    tokens = list(scan(text))
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.name == "ASCII_40":
            depth += 1
        elif tok.name == "ASCII_41":
            depth -= 1
        elif depth == 0 and tok.name == "WITH" and i + 1 < len(tokens) \
                and tokens[i + 1].name == "ASCII_40":
            inner = 0
            for close in tokens[i + 1:]:
                if close.name == "ASCII_40":
                    inner += 1
                elif close.name == "ASCII_41":
                    inner -= 1
                    if inner == 0:
                        return tok.start, close.end + 1
            return None
    return None


def same_index(original: Any, text: str, expected_options: list[Any]) -> bool:
    """`text` parses to the index statement `original`, but for its WITH options, which are
    `expected_options` (trees without locations; [] for none)."""
    try:
        stmts = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return False
    if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.IndexStmt):
        return False
    new = stmts[0].stmt
    options = [without_locations(o(depth=None, skip_none=True)) for o in new.options or ()]
    return bool(options == expected_options and without_options(new) == without_options(original))


def without_options(stmt: Any) -> Any:
    data = stmt(depth=None, skip_none=True)
    data.pop("options", None)
    return without_locations(data)


def without_locations(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_locations(v) for k, v in value.items() if k != "location"}
    if isinstance(value, (list, tuple)):
        return [without_locations(v) for v in value]
    return value


_HALFVEC_OPCLASS = {"cosine": "halfvec_cosine", "l2": "halfvec_l2",
                    "dot_product": "halfvec_dot_product", "dot_prod": "halfvec_dot_product"}

_TAG = "$alloydb_scann$"
_INNER = "$alloydb_scann_stmt$"


def _create_block(stmt: Any, text: str, config: list[str]) -> str | None:
    """A DO block that runs the CREATE INDEX ``text``, then records the new index's ScaNN
    options for pg_stat_ann_indexes (when alloydb_scann is installed). When pgvector refuses
    the column's dimensions, it builds an index of the same name on the column cast to halfvec
    instead (see the module's plan). None if the statement cannot be wrapped."""
    if _TAG in text or _INNER in text:
        return None
    relation = sql_literal(relation_text(stmt.relation))
    indexes = ("ARRAY(SELECT i.indexrelid FROM pg_catalog.pg_index i "
               f"WHERE i.indrelid = pg_catalog.to_regclass({relation}))")
    record = (
        f"SELECT x.indexrelid INTO new_index FROM pg_catalog.unnest({indexes}) AS x(indexrelid) "
        "WHERE x.indexrelid <> ALL (before) LIMIT 1; "
        "SELECT n.nspname INTO ext FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'alloydb_scann'; "
        "IF new_index IS NOT NULL AND ext IS NOT NULL THEN "
        "EXECUTE pg_catalog.format('SELECT %I._scann_record_index($1, $2)', ext) "
        f"USING new_index::pg_catalog.regclass, {_text_array(config)}; END IF; "
    )
    fallback = halfvec_fallback(stmt, method=ACCESS_METHOD, opclasses=_HALFVEC_OPCLASS)
    return (
        f"DO {_TAG} DECLARE before oid[]; new_index oid; ext name; dims int; BEGIN "
        f"before := {indexes}; "
        f"BEGIN EXECUTE {_INNER}{text}{_INNER}; "
        f"EXCEPTION WHEN program_limit_exceeded THEN {fallback} END; "
        f"{record}END {_TAG}"
    )


def halfvec_fallback(stmt: Any, *, method: str, opclasses: Mapping[str, str],
                     with_clause: str = "") -> str:
    """PL/pgSQL for the exception handler of a ``DO`` block that declares ``dims int``: the
    index ``stmt`` (access method ``method``, the options ``with_clause`` as the statement
    sent them) built on the column cast to halfvec, with ``opclasses`` mapping the statement's
    operator class to the halfvec one, when the column has 2,001 to 4,000 dimensions; else the
    error again. An index without a name gets the one PostgreSQL would have chosen for the
    statement (`<table>_<column>_idx`, numbered when taken): PostgreSQL names the index on the
    cast after the column too."""
    params: list[Any] = list(stmt.indexParams or ())
    if (len(params) != 1 or params[0].name is None or not params[0].opclass
            or params[0].opclass[-1].sval not in opclasses
            or stmt.whereClause is not None or stmt.indexIncludingParams or stmt.tableSpace):
        return "RAISE;"
    opclass = opclasses[params[0].opclass[-1].sval]
    relation = relation_text(stmt.relation)
    column = params[0].name
    if_not_exists = "IF NOT EXISTS " if stmt.if_not_exists else ""
    options = f" {with_clause.replace('%', '%%')}" if with_clause else ""
    named = stmt.idxname is not None
    template = (f"CREATE INDEX {if_not_exists}{'%s ' if named else ''}ON %s USING {method} "
                f"((%I::halfvec(%s)) {opclass}){options}")
    name_argument = f"{sql_literal(quote_ident(stmt.idxname))}, " if named else ""
    # The name, for the NOTICE: the statement's, or the newest index of the table (the one just
    # made: no other statement can make one on it meanwhile, CREATE INDEX locks it)
    name = sql_literal(stmt.idxname) if named else (
        "(SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c "
        "ON c.oid = i.indexrelid "
        f"WHERE i.indrelid = {sql_literal(relation)}::pg_catalog.regclass "
        "ORDER BY c.oid DESC LIMIT 1)")
    return (
        "SELECT a.atttypmod INTO dims FROM pg_catalog.pg_attribute a "
        f"WHERE a.attrelid = {sql_literal(relation)}::pg_catalog.regclass "
        f"AND a.attname = {sql_literal(column)}; "
        "IF dims IS NULL OR dims <= 2000 OR dims > 4000 THEN RAISE; END IF; "
        f"EXECUTE pg_catalog.format({sql_literal(template)}, "
        f"{name_argument}{sql_literal(relation)}, {sql_literal(column)}, dims); "
        f"RAISE NOTICE '{_NOTICE_NAMES[method]} (emulated): pgvector indexes at most 2000 dimensions; "
        "% was built on the column cast to halfvec(%), which ORDER BY % <=> ... does not use', "
        f"{name}, dims, {sql_literal(column)};"
    )


_NOTICE_NAMES = {ACCESS_METHOD: "alloydb_scann", "ivf": "ivf"}


def _text_array(values: list[str] | list[str | None]) -> str:
    return "ARRAY[" + ", ".join("NULL" if v is None else sql_literal(v) for v in values) + "]::text[]"


def relation_text(rel: Any) -> str:
    parts = [rel.schemaname, rel.relname] if rel.schemaname else [rel.relname]
    return ".".join(quote_ident(p) for p in parts)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- errors -----------------------------------------------------------------------------------


def raise_block(err: ScannError, otherwise: str | None = None) -> str:
    """A statement that makes PostgreSQL raise ``err``. On a database without the ``scann``
    access method it runs ``otherwise`` instead, or raises PostgreSQL's own error for a missing
    access method."""
    missing = (
        "RAISE EXCEPTION USING ERRCODE = 'undefined_object', "
        "MESSAGE = 'access method \"scann\" does not exist';"
        if otherwise is None else f"EXECUTE {sql_literal(otherwise)};"
    )
    fields = [f"ERRCODE = {sql_literal(err.sqlstate)}", f"MESSAGE = {sql_literal(err.message)}"]
    if err.detail:
        fields.append(f"DETAIL = {sql_literal(err.detail)}")
    if err.hint:
        fields.append(f"HINT = {sql_literal(err.hint)}")
    return (
        "DO $alloydb_scann$ BEGIN "
        "IF NOT EXISTS (SELECT FROM pg_catalog.pg_am WHERE amname = 'scann') THEN "
        f"{missing} RETURN; END IF; "
        f"RAISE EXCEPTION USING {', '.join(fields)}; END $alloydb_scann$"
    )
