"""The google_ml_integration.* flags: AlloyDB's instance flags and their defaults.

On AlloyDB they are instance flags: every database answers ``SHOW google_ml_integration.<flag>``,
whether or not it has the extension, and whatever the extension's version. Stock PostgreSQL
knows them only as placeholders, so their defaults live here, once:

- the extension's ``google_ml._flag_defaults()`` is built from `FLAGS` (``{{FLAG_DEFAULTS}}`` in
  emulator/sql/src/flags.sql; providers.sql_constants hands it to the build), and the
  ``pg_settings`` rows and the checks that gate functions read it;
- the proxy answers ``SHOW google_ml_integration.<flag>`` in a database without the extension
  from `defaults()` (proxy/rewrites.py; the command line passes them in the proxy's config).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "google_ml_integration."


@dataclass(frozen=True, slots=True)
class Flag:
    name: str  # without the prefix
    default: str  # as SHOW and pg_settings show it
    vartype: str  # bool or string
    description: str


FLAGS: tuple[Flag, ...] = (
    Flag("allow_http_endpoints", "off", "bool",
         "Allows model request URLs that use http:// (otherwise only https://)."),
    Flag("default_llm_model", "gemini-2.5-flash-lite", "string",
         "The model the AI functions call when model_id is NULL."),
    Flag("enable_ai_function_acceleration", "off", "bool",
         "Accelerates ai.if in WHERE and ai.rank in ORDER BY (AlloyDB on PostgreSQL 17)."),
    Flag("enable_ai_query_engine", "off", "bool",
         "Enables the AI query engine functions (ai.if, ai.rank, ai.generate)."),
    Flag("enable_cost_optimized_ai_functions", "off", "bool",
         "Lets ai.if(prompt, embedding) use a proxy model trained on the LLM's answers."),
    Flag("enable_faster_embedding_generation", "off", "bool",
         "Enables faster embedding generation (ai.initialize_embeddings)."),
    Flag("enable_forecasting", "off", "bool",
         "Enables time-series forecasting (ai.forecast)."),
    Flag("enable_model_support", "on", "bool",
         "Enables model endpoint management and model calls."),
    Flag("enable_preview_ai_functions", "off", "bool",
         "Enables the AI functions in preview."),
    # accelerate-queries-optimized-functions (its current copy): the optimized ai.if's remote
    # LLM fallback, on by default, and its runtime accuracy check, off by default
    Flag("proxy_models_enable_accuracy_check", "off", "bool",
         "Checks an optimized function's proxy model against the LLM on a sample of rows."),
    Flag("proxy_models_enable_llm_fallback", "on", "bool",
         "Lets an optimized function fall back to the remote LLM."),
    Flag("runtime_accuracy_check", "on", "bool",
         "Checks the accuracy of a cost-optimized function's proxy model on a sample of rows."),
)


def defaults() -> dict[str, tuple[str, bool]]:
    """Each flag's full name -> its default and whether it is a bool (the proxy's config)."""
    return {PREFIX + flag.name: (flag.default, flag.vartype == "bool") for flag in FLAGS}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_values() -> str:
    """The rows of ``google_ml._flag_defaults()``: (name, default_value, vartype, description)."""
    return ",\n        ".join(
        f"({_quote(f.name)}, {_quote(f.default)}, {_quote(f.vartype)},\n"
        f"         {_quote(f.description)})" for f in FLAGS)
