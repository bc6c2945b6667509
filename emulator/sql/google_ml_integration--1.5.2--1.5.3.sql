-- google_ml_integration 1.5.2 -> 1.5.3 (emulator).
--
-- AlloyDB's 1.5.3 added the model_availability column, which the emulator's base script
-- (1.5.2) already has: clients pin either version (LangChain's model manager asks for
-- VERSION '1.5.2', its vector store checks extversion >= 1.5.3), so both must install and
-- this step changes nothing.

\echo Use "ALTER EXTENSION google_ml_integration UPDATE" to load this file. \quit

-- (nothing to do)
