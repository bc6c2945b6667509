"""AlloyDB's IVF index through the proxy: ``USING ivf``, its ``quantizer``, ``ivf.probes``.

Plan
----
On AlloyDB the ``ivf`` access method comes with the ``vector`` extension (Google's pgvector;
pages ai/create-ivf-index and ai/tune-indexes): ``CREATE INDEX ... USING ivf (col
vector_l2_ops | vector_ip_ops | vector_cosine_ops) WITH (lists = N, quantizer = 'SQ8' | 'FLAT')``,
queried with the setting ``ivf.probes``. Stock pgvector has no ``ivf``, only ``ivfflat``, whose
index is the same inverted-file structure without scalar quantization. So the emulated ``ivf`` is
pgvector's ivfflat handler under AlloyDB's name, with operator classes of pgvector's names, made
a member of the ``vector`` extension (dropped with it, left out of pg_dump as pgvector's own
objects are):

* ``CREATE EXTENSION vector``, and ``CREATE EXTENSION alloydb_scann CASCADE`` (which creates it;
  not beside a DO block of the client's, whose tag could not be told apart), runs in a ``DO``
  block that adds the access method after it, when the caller is a superuser (only a superuser
  can create an access method, and stock pgvector is not a trusted extension).
* ``CREATE INDEX ... USING ivf``: ``quantizer`` is checked (SQ8 or FLAT, any case; the default is
  SQ8) and taken out of the ``WITH`` list, since ivfflat's handler knows only ``lists``; every
  other option goes to pgvector as written (which judges ``lists``, 1 to 32768, and refuses
  unknown names with PostgreSQL's own error). Unless ``CONCURRENTLY``, the statement runs in a
  ``DO`` block (tag renamed back) that first adds the access method to a ``vector`` created
  elsewhere (by CASCADE, or before the proxy), again for a superuser; others get PostgreSQL's
  error with a HINT that says who can add it. ``CONCURRENTLY`` cannot run in a DO block: the same
  is done by a prelude, a statement of its own the session sends just before (proxy/session.py).
* A column of 2,001 to 4,000 dimensions (AlloyDB's SQ8 takes up to 8,000; pgvector's ivfflat at
  most 2,000): as for ScaNN (proxy/scann.py), the index of that name is built on the column cast
  to ``halfvec``, with a NOTICE that ``ORDER BY col <=> q`` will not use it.
* ``SET [LOCAL] ivf.probes = n`` (and ``RESET`` / ``TO DEFAULT``; also ``ALTER DATABASE/ROLE ...
  SET``): checked as an integer from 1 to 32768 (pgvector's range for the probes it reads), then
  pgvector's ``ivfflat.probes`` gets the same value, since that is the setting the emulated scan
  reads. ``SELECT set_config('ivf.probes', v, is_local)`` does the same where its meaning cannot
  change (``plan_set_config``). ``SHOW ivf.probes`` answers 1 before any SET where ``vector`` is installed, as a
  declared setting does.

The index keeps no trace of its quantizer (ivfflat's reloptions cannot hold it): ``\\d`` shows
``WITH (lists='100')``. Every rewrite is spliced into the client's text, parsed again, and
dropped (the statement goes as written) when anything is in doubt.
"""

from __future__ import annotations

from typing import Any

import pglast
from pglast import ast
from pglast.enums import VariableSetKind
from pglast.parser import scan
from pglast.visitors import Visitor

from proxy.scann import (
    IN_TRANSACTION_REFUSAL,
    EnumOption,
    IntOption,
    ScannError,
    ScannPlan,
    arg_text,
    check_value,
    halfvec_fallback,
    relation_text,
    same_index,
    sql_literal,
    with_span,
    without_locations,
)
from proxy.statements import Splice, call_span, name_span

ACCESS_METHOD = "ivf"
# ai/create-ivf-index: "Set to either of the following: SQ8 ... FLAT"; LangChain's IVFIndex
# writes `quantizer = sq8`.
QUANTIZER = EnumOption(("SQ8", "FLAT"))
PROBES_SETTING = "ivf.probes"
PROBES = IntOption(1, 32_768)  # pgvector's ivfflat.probes, the setting the emulated scan reads
PROBES_DEFAULT = "1"  # LangChain's IVFQueryOptions and pgvector's ivfflat.probes
_PGVECTOR_PROBES = "ivfflat.probes"

# pgvector's ivfflat operator classes, under the ivf access method: for `vector`, the names
# ai/create-ivf-index lists; for `halfvec` (pgvector 0.7 and later), the ones the index on a
# column of 2,001 to 4,000 dimensions falls back to (see _plan_index). Each: (name, type,
# operator, support functions by number); %1$I is pgvector's schema.
_V = "%1$I.vector"
_H = "%1$I.halfvec"
_OPCLASSES: tuple[tuple[str, str, str, tuple[tuple[int, str], ...]], ...] = (
    ("vector_l2_ops", _V, "<->", ((1, f"vector_l2_squared_distance({_V}, {_V})"),
                                  (3, f"l2_distance({_V}, {_V})"))),
    ("vector_ip_ops", _V, "<#>", ((1, f"vector_negative_inner_product({_V}, {_V})"),
                                  (3, f"vector_spherical_distance({_V}, {_V})"),
                                  (4, f"vector_norm({_V})"))),
    ("vector_cosine_ops", _V, "<=>", ((1, f"vector_negative_inner_product({_V}, {_V})"),
                                      (2, f"vector_norm({_V})"),
                                      (3, f"vector_spherical_distance({_V}, {_V})"),
                                      (4, f"vector_norm({_V})"))),
    ("halfvec_l2_ops", _H, "<->", ((1, f"halfvec_l2_squared_distance({_H}, {_H})"),
                                   (3, f"l2_distance({_H}, {_H})"),
                                   (5, "ivfflat_halfvec_support(internal)"))),
    ("halfvec_ip_ops", _H, "<#>", ((1, f"halfvec_negative_inner_product({_H}, {_H})"),
                                   (3, f"halfvec_spherical_distance({_H}, {_H})"),
                                   (4, f"l2_norm({_H})"),
                                   (5, "ivfflat_halfvec_support(internal)"))),
    ("halfvec_cosine_ops", _H, "<=>", ((1, f"halfvec_negative_inner_product({_H}, {_H})"),
                                       (2, f"l2_norm({_H})"),
                                       (3, f"halfvec_spherical_distance({_H}, {_H})"),
                                       (4, f"l2_norm({_H})"),
                                       (5, "ivfflat_halfvec_support(internal)"))),
)
_HALFVEC_OPCLASS = {"vector_l2_ops": "halfvec_l2_ops", "vector_ip_ops": "halfvec_ip_ops",
                    "vector_cosine_ops": "halfvec_cosine_ops"}

# FROM clause: the schema of the vector extension, as n.nspname (no row without it)
_VECTOR_SCHEMA = ("pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n "
                  "ON n.oid = e.extnamespace WHERE e.extname = 'vector'")
_COMMENT = "ivf index access method (AlloyDB's, emulated on pgvector's ivfflat)"
_TAG = "$alloydb_ivf$"
_INNER = "$alloydb_ivf_stmt$"
_NOT_SUPERUSER_HINT = (
    "On AlloyDB the ivf access method comes with the vector extension; the emulator adds it to "
    "vector when a superuser creates the extension or a first IVF index in this database "
    "through the proxy.")
_NO_VECTOR_HINT = "Run CREATE EXTENSION vector first: the ivf access method comes with it."


def plan_ivf(sql: str, stmt: Any, start: int, end: int, *, tags_renamable: bool) -> ScannPlan:
    """What to change in the statement ``sql[start:end]`` (nothing for most statements)."""
    try:
        if isinstance(stmt, ast.IndexStmt) and stmt.accessMethod == ACCESS_METHOD:
            return _plan_index(sql, stmt, start, end, tags_renamable)
    except ScannError as err:
        return ScannPlan([Splice(start, end, _raise_block(err))])
    if isinstance(stmt, ast.CreateExtensionStmt) and _creates_vector(stmt) and tags_renamable:
        block = (f"DO {_TAG} DECLARE ns name; is_super boolean; BEGIN "
                 f"EXECUTE {_INNER}{sql[start:end]}{_INNER}; {_ensure(strict=False)} END {_TAG}")
        if _INNER not in sql[start:end] and _TAG not in sql[start:end]:
            return ScannPlan([Splice(start, end, block)], (b"DO", b"CREATE EXTENSION"))
    if isinstance(stmt, ast.VariableSetStmt) and (stmt.name or "").lower() == PROBES_SETTING:
        return _plan_probes(sql, stmt, start, end, tags_renamable)
    stored: Any = stmt.setstmt if isinstance(
        stmt, (ast.AlterDatabaseSetStmt, ast.AlterRoleSetStmt)) else None
    if stored is not None and (stored.name or "").lower() == PROBES_SETTING:
        return _plan_stored_probes(sql, stmt, start, end, tags_renamable)
    return ScannPlan([])


# -- the access method ------------------------------------------------------------------------


def _creates_vector(stmt: Any) -> bool:
    """CREATE EXTENSION vector, or alloydb_scann CASCADE, as ai/create-scann-index installs it
    (vector with it): after either, the ivf access method is there on AlloyDB."""
    if stmt.extname == "vector":
        return True
    return stmt.extname == "alloydb_scann" and any(
        option.defname == "cascade" for option in stmt.options or ())


def _ensure(*, strict: bool) -> str:
    """PL/pgSQL (in a block that declares ``ns name`` and ``is_super boolean``): create the ivf
    access method and its operator classes as members of the vector extension, if missing. ``strict``: raise
    PostgreSQL's error for a missing access method when it cannot be created."""
    comment = sql_literal(f"COMMENT ON ACCESS METHOD ivf IS {sql_literal(_COMMENT)}")
    create = [
        ("EXECUTE pg_catalog.format("
         "'CREATE ACCESS METHOD ivf TYPE INDEX HANDLER %I.ivfflathandler', ns)"),
        f"EXECUTE {comment}",
        "EXECUTE 'ALTER EXTENSION vector ADD ACCESS METHOD ivf'",
    ]
    for name, type_, operator, functions in _OPCLASSES:
        items = [(f"OPERATOR 1 %1$I.{operator} ({type_}, {type_}) "
                  "FOR ORDER BY pg_catalog.float_ops")]
        items += [f"FUNCTION {number} %1$I.{function}" for number, function in functions]
        body = f"CREATE OPERATOR CLASS %1$I.{name} FOR TYPE {type_} USING ivf AS " + ", ".join(
            items)
        steps = [f"EXECUTE pg_catalog.format({sql_literal(body)}, ns)"] + [
            "EXECUTE pg_catalog.format("
            f"'ALTER EXTENSION vector ADD OPERATOR {kind} %I.{name} USING ivf', ns)"
            for kind in ("CLASS", "FAMILY")]
        if type_ == _H:  # only where pgvector has halfvec (0.7 and later)
            steps = ["IF pg_catalog.to_regprocedure(pg_catalog.format("
                     "'%I.ivfflat_halfvec_support(internal)', ns)) IS NOT NULL THEN "
                     + "; ".join(steps) + "; END IF"]
        create.extend(steps)
    if strict:
        refuse = (
            "IF ns IS NULL OR NOT is_super THEN RAISE EXCEPTION USING "
            "ERRCODE = 'undefined_object', MESSAGE = 'access method \"ivf\" does not exist', "
            f"HINT = CASE WHEN ns IS NULL THEN {sql_literal(_NO_VECTOR_HINT)} "
            f"ELSE {sql_literal(_NOT_SUPERUSER_HINT)} END; END IF; "
        )
    else:
        refuse = "IF ns IS NULL OR NOT is_super THEN RETURN; END IF; "
    return (
        "IF NOT EXISTS (SELECT FROM pg_catalog.pg_am WHERE amname = 'ivf') THEN "
        f"SELECT n.nspname INTO ns FROM {_VECTOR_SCHEMA}; "
        "is_super := coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r "
        "WHERE r.rolname = current_user), false); "
        f"{refuse}{'; '.join(create)}; END IF;"
    )


def _raise_block(err: ScannError) -> str:
    """A statement that raises ``err`` (ERRCODE, MESSAGE, DETAIL, HINT as given)."""
    fields = [f"ERRCODE = {sql_literal(err.sqlstate)}", f"MESSAGE = {sql_literal(err.message)}"]
    if err.detail:
        fields.append(f"DETAIL = {sql_literal(err.detail)}")
    if err.hint:
        fields.append(f"HINT = {sql_literal(err.hint)}")
    return f"DO {_TAG} BEGIN RAISE EXCEPTION USING {', '.join(fields)}; END {_TAG}"


# -- CREATE INDEX ... USING ivf ---------------------------------------------------------------


def _plan_index(sql: str, stmt: Any, start: int, end: int, tags_renamable: bool) -> ScannPlan:
    options = list(stmt.options or ())
    quantizers = [o for o in options if o.defname == "quantizer"]
    if len(quantizers) > 1:
        raise ScannError("22023", 'parameter "quantizer" specified more than once')
    for option in quantizers:
        check_value(QUANTIZER, "quantizer", arg_text(option.arg), option=True)
    text = sql[start:end]
    if quantizers:
        cut = _without_quantizer(text, stmt)
        if cut is None:
            # not sure of the cut: pgvector will refuse the option itself
            return ScannPlan([], hint=_scann_opclass_hint(stmt))
        text = cut
    if tags_renamable and not stmt.concurrent and _TAG not in text and _INNER not in text:
        span = with_span(text) if stmt.options else None
        fallback = halfvec_fallback(stmt, method=ACCESS_METHOD, opclasses=_HALFVEC_OPCLASS,
                                    with_clause=text[span[0]:span[1]] if span else "")
        block = (f"DO {_TAG} DECLARE ns name; is_super boolean; dims int; BEGIN "
                 f"{_ensure(strict=True)} BEGIN EXECUTE {_INNER}{text}{_INNER}; "
                 f"EXCEPTION WHEN program_limit_exceeded THEN {fallback} END; END {_TAG}")
        return ScannPlan([Splice(start, end, block)], (b"DO", b"CREATE INDEX"),
                         hint=_scann_opclass_hint(stmt))
    prelude = _concurrent_prelude(stmt) if stmt.concurrent else None
    hint = _scann_opclass_hint(stmt)
    if text == sql[start:end]:
        return ScannPlan([], prelude=prelude, hint=hint)
    return ScannPlan([Splice(start, end, text)], prelude=prelude, hint=hint)


# ScaNN's operator class names. ai/tune-indexes prints ``USING ivf (vector_column cosine)``
# (beside ``USING ivfflat (vector_column cosine)``, which stock pgvector refuses too, and the
# identifiers ``my-ivf-index``, ``my-table``, which no PostgreSQL accepts), where
# ai/create-ivf-index, the page that defines the statement, lists vector_l2_ops, vector_ip_ops
# and vector_cosine_ops only. So they stay refused, with PostgreSQL's error and this HINT.
_SCANN_NAMES = {"cosine": "vector_cosine_ops", "l2": "vector_l2_ops",
                "dot_product": "vector_ip_ops", "dot_prod": "vector_ip_ops"}


def _scann_opclass_hint(stmt: Any) -> tuple[str, str, str] | None:
    """The HINT for PostgreSQL's "operator class ... does not exist" of an IVF index written
    with a ScaNN operator class name."""
    for param in stmt.indexParams or ():
        name = str(param.opclass[-1].sval) if param.opclass else None
        if name in _SCANN_NAMES:
            hint = (f"The ivf index takes pgvector's operator classes (ai/create-ivf-index): "
                    f"{_SCANN_NAMES[name]} here. {name} is a ScaNN name (USING scann).")
            return "42704", f'operator class "{name}" does not exist for access method "ivf"', hint
    return None


def _concurrent_prelude(stmt: Any) -> str | None:
    """The prelude of ``CREATE INDEX CONCURRENTLY ... USING ivf`` (a statement that cannot run in
    a DO block): the access method added first, as the plain statement's block does. Not for a
    table that does not exist (PostgreSQL's own error comes first); inside a transaction,
    PostgreSQL's refusal of CONCURRENTLY (``IN_TRANSACTION_REFUSAL``)."""
    relation = sql_literal(relation_text(stmt.relation))
    if _TAG in relation:
        return None
    return (f"DO {_TAG} DECLARE ns name; is_super boolean; BEGIN "
            f"{IN_TRANSACTION_REFUSAL} "
            f"IF pg_catalog.to_regclass({relation}) IS NULL THEN RETURN; END IF; "
            f"{_ensure(strict=True)} END {_TAG}")


def _without_quantizer(text: str, stmt: Any) -> str | None:
    """``text`` (the CREATE INDEX statement ``stmt``) with the quantizer taken out of its WITH
    list; None when the cut cannot be made for sure."""
    span = with_span(text)
    if span is None:
        return None
    elements = _list_elements(text, span)
    options = list(stmt.options)
    if len(elements) != len(options):
        return None
    kept = [element for element, option in zip(elements, options, strict=True)
            if option.defname != "quantizer"]
    if kept:
        new = text[: span[0]] + "WITH (" + ", ".join(kept) + ")" + text[span[1]:]
    else:
        rest = text[span[1]:].lstrip()
        new = text[: span[0]].rstrip() + (" " + rest if rest else "")
    expected = [without_locations(o(depth=None, skip_none=True)) for o in options
                if o.defname != "quantizer"]
    return new if same_index(stmt, new, expected) else None


def _list_elements(text: str, span: tuple[int, int]) -> list[str]:
    """The texts of the comma-separated elements inside ``WITH ( ... )`` at ``span``."""
    elements: list[str] = []
    depth = 0
    first: int | None = None
    last = 0
    for token in scan(text[span[0]:span[1]]):
        if token.name == "ASCII_40":
            depth += 1
            if depth == 1:
                continue
        elif token.name == "ASCII_41":
            depth -= 1
            if depth == 0:
                break
        elif token.name == "ASCII_44" and depth == 1:
            if first is not None:
                elements.append(text[span[0] + first: span[0] + last + 1])
            first = None
            continue
        if depth >= 1:
            first = token.start if first is None else first
            last = token.end
    if first is not None:
        elements.append(text[span[0] + first: span[0] + last + 1])
    return elements


# -- SHOW ivf.probes --------------------------------------------------------------------------


def show_probes(stmt: Any) -> str | None:
    """The SELECT that answers ``SHOW ivf.probes`` (tag to be renamed to SHOW), or None for any
    other statement. AlloyDB's vector declares the setting, so it answers 1 before any SET;
    stock PostgreSQL knows an unset placeholder only by name. Where ``vector`` is not, the last
    ``current_setting`` raises PostgreSQL's own "unrecognized configuration parameter"."""
    if not isinstance(stmt, ast.VariableShowStmt) or str(stmt.name or "") != PROBES_SETTING:
        return None
    return (
        f"SELECT COALESCE(pg_catalog.current_setting('{PROBES_SETTING}', true), "
        f"CASE WHEN EXISTS (SELECT FROM {_VECTOR_SCHEMA}) THEN '{PROBES_DEFAULT}' END, "
        f"pg_catalog.current_setting('{PROBES_SETTING}')) AS \"{PROBES_SETTING}\""
    )


# -- set_config('ivf.probes', ...) ------------------------------------------------------------

_PROBES_HINT = (f"{PROBES_SETTING} is passed on to pgvector's {_PGVECTOR_PROBES}, the setting the "
                f"emulated ivf index reads: an integer from {PROBES.low} to {PROBES.high}.")


def plan_set_config(sql: str, stmt: Any) -> ScannPlan:
    """``set_config('ivf.probes', v, is_local)`` in a SELECT: pgvector's ivfflat.probes set
    alike, as ``SET ivf.probes`` does. Only a call whose meaning cannot change: PostgreSQL's
    set_config (the CASE asks the catalog which function the name resolves to, at run time),
    positional arguments, the name a literal, ``v`` a literal or a parameter (so it is typed as
    before), ``is_local`` true or false (written twice), in a database that has ``vector`` (where
    AlloyDB's declares the setting); otherwise the value goes to ivf.probes alone, as written.
    The call's value is then ivfflat.probes' form of ``v`` (``05`` reads ``5``), as a declared
    integer setting's is on AlloyDB; a value pgvector refuses is its error, with a HINT."""
    # The substring tests keep the tree walk (a few hundred microseconds) off every other
    # SELECT: this runs for each statement the proxy parses, vector searches included.
    if not isinstance(stmt, ast.SelectStmt):
        return ScannPlan([])
    lowered = sql.lower()
    if "set_config" not in lowered or PROBES_SETTING not in lowered:
        return ScannPlan([])
    finder = _SetConfigCalls()
    finder(stmt)
    splices = [_mirrored_call(sql, call) for call in finder.calls]
    if not splices:
        return ScannPlan([])
    return ScannPlan(splices, hint=("22023", f'parameter "{_PGVECTOR_PROBES}"', _PROBES_HINT))


class _SetConfigCalls(Visitor):
    """The calls ``[pg_catalog.]set_config('ivf.probes', <literal or $n>, true | false)``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        names = [getattr(n, "sval", None) for n in node.funcname or ()]
        args = list(node.args or ())
        if (names not in (["set_config"], ["pg_catalog", "set_config"]) or len(args) != 3
                or node.agg_order or node.agg_filter or node.over or node.agg_star
                or node.agg_distinct or node.func_variadic):
            return
        setting, value, local = args
        if (_string(setting) or "").lower() != PROBES_SETTING:
            return
        if _string(value) is None and not isinstance(value, ast.ParamRef):
            return
        if not (isinstance(local, ast.A_Const) and isinstance(local.val, ast.Boolean)):
            return
        self.calls.append(node)


def _string(node: Any) -> str | None:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return str(node.val.sval)
    return None


def _e_literal(value: str) -> str:
    """A string literal that reads the same whatever standard_conforming_strings says."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _mirrored_call(sql: str, call: Any) -> Splice:
    setting, value, local = call.args
    start, end = call_span(sql, call.location)
    name = sql[start:name_span(sql, call.location)[1]]
    text = _string(value)
    new_value = f"${value.number}" if text is None else _e_literal(text)
    is_local = "true" if local.val.boolval else "false"
    mirrored = (
        f"CASE WHEN pg_catalog.to_regprocedure({_e_literal(name + '(text,text,boolean)')}) "
        "= 'pg_catalog.set_config(text,text,boolean)'::pg_catalog.regprocedure "
        "AND EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'vector') "
        f"THEN pg_catalog.set_config('{_PGVECTOR_PROBES}', {new_value}, {is_local}) "
        f"ELSE {new_value} END")
    return Splice(start, end,
                  f"{name}({_e_literal(str(_string(setting)))}, {mirrored}, {is_local})")


# -- SET ivf.probes ---------------------------------------------------------------------------


def _refused_probes(setting: Any, start: int, end: int) -> ScannPlan | None:
    """The error block for a value ``ivf.probes`` refuses (a SET's arguments), or None."""
    values = [arg_text(a) for a in setting.args or ()]
    try:
        if len(values) != 1:
            raise ScannError("22023", f"SET {PROBES_SETTING} takes only one argument")
        check_value(PROBES, PROBES_SETTING, values[0], option=False)
    except ScannError as err:
        return ScannPlan([Splice(start, end, _raise_block(err))])
    return None


def _plan_probes(sql: str, stmt: Any, start: int, end: int, tags_renamable: bool) -> ScannPlan:
    """``SET [LOCAL] ivf.probes``: checked, and pgvector's ivfflat.probes set alike."""
    local = "true" if stmt.is_local else "false"
    if stmt.kind == VariableSetKind.VAR_SET_VALUE:
        refused = _refused_probes(stmt, start, end)
        if refused is not None:
            return refused
        mirror = (f"PERFORM pg_catalog.set_config('{_PGVECTOR_PROBES}', "
                  f"pg_catalog.current_setting('{PROBES_SETTING}'), {local});")
    elif stmt.kind in (VariableSetKind.VAR_SET_DEFAULT, VariableSetKind.VAR_RESET):
        mirror = f"EXECUTE '{'SET LOCAL' if stmt.is_local else 'SET'} {_PGVECTOR_PROBES} TO DEFAULT';"
    else:
        return ScannPlan([])
    original = sql[start:end]
    if not tags_renamable or _TAG in original:
        return ScannPlan([])
    tag = b"RESET" if stmt.kind == VariableSetKind.VAR_RESET else b"SET"
    block = (
        f"DO {_TAG} DECLARE ns name; BEGIN EXECUTE {sql_literal(original)}; "
        f"SELECT n.nspname INTO ns FROM {_VECTOR_SCHEMA}; "
        "IF ns IS NULL THEN RETURN; END IF; "
        # reading a vector loads pgvector, whose ivfflat.probes is then a real setting
        "EXECUTE pg_catalog.format('SELECT %L::%I.vector', '[1]', ns); "
        f"{mirror} END {_TAG}"
    )
    return ScannPlan([Splice(start, end, block)], (b"DO", tag))


def _plan_stored_probes(sql: str, stmt: Any, start: int, end: int,
                        tags_renamable: bool) -> ScannPlan:
    """``ALTER DATABASE/ROLE ... SET ivf.probes``: checked, then the same statement for pgvector's
    ivfflat.probes too, so that the sessions it applies to start with both."""
    setting = stmt.setstmt
    if setting.kind == VariableSetKind.VAR_SET_VALUE:
        refused = _refused_probes(setting, start, end)
        if refused is not None:
            return refused
    original = sql[start:end]
    mirror = _renamed_setting(original, stmt)
    if not tags_renamable or mirror is None or _TAG in original:
        return ScannPlan([])
    block = f"DO {_TAG} BEGIN EXECUTE {sql_literal(original)}; EXECUTE {sql_literal(mirror)}; END {_TAG}"
    tag = b"ALTER DATABASE" if isinstance(stmt, ast.AlterDatabaseSetStmt) else b"ALTER ROLE"
    return ScannPlan([Splice(start, end, block)], (b"DO", tag))


def _renamed_setting(text: str, stmt: Any) -> str | None:
    """``text`` (an ALTER DATABASE/ROLE ... SET/RESET ivf.probes) naming ivfflat.probes instead;
    None when the name cannot be found for sure."""
    tokens = list(scan(text))
    keyword = next((i for i, t in enumerate(tokens) if t.name in ("SET", "RESET")), None)
    if keyword is None:
        return None
    name = []
    for token in tokens[keyword + 1:]:
        if token.name in ("ASCII_61", "TO"):
            break
        name.append(token)
    if not name:
        return None
    new = text[: name[0].start] + _PGVECTOR_PROBES + text[name[-1].end + 1:]
    try:
        stmts = pglast.parse_sql(new)
    except pglast.parser.ParseError:
        return None
    renamed: Any = stmts[0].stmt if len(stmts) == 1 else None
    if type(renamed) is not type(stmt):
        return None
    expected = without_locations(stmt(depth=None, skip_none=True))
    expected["setstmt"]["name"] = _PGVECTOR_PROBES
    return new if without_locations(renamed(depth=None, skip_none=True)) == expected else None
