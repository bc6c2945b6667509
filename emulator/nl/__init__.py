"""AlloyDB AI natural language (the ``alloydb_ai_nl`` extension): the engine's side.

The extension's SQL gathers what a task needs (templates, fragments, value-index matches, the
schema of the configuration) and sends one ``{"op": "alloydb_ai_nl", "task": ...}`` request
through google_ml_integration's callback channel; ``handler.handle`` answers it. The SQL checks
every generated statement with EXPLAIN, with the caller's rights, and asks again with the error.

- ``params``: literals of SQL, parameterization of templates and fragments, filling parameters.
- ``compose``: the deterministic (fake mode) question-to-SQL: template choice, value
  substitution, fragments, and a small schema-based composer when no template fits.
- ``fake_text``: deterministic descriptions, intent checks and summaries.
- ``live``: the prompts and answers of live mode (Gemini generateContent).
- ``handler``: the request kind: fake or live, per the engine's mode and the model's provider.
"""
