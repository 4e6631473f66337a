-- pg_credit 0.2.0 -> 0.3.0 (UPDATING.md). Applied by ALTER EXTENSION pg_credit UPDATE.
-- Grows with each capability of 0.3.0; the surface test (tests/upgrade) proves it reproduces a
-- fresh 0.3.0 install.
\echo Use "ALTER EXTENSION pg_credit UPDATE" to load this file. \quit

