-- Baseline: marks a database as managed by CloudBill's migration runner.
--
-- Files in this folder are applied in version order, each exactly once, all pending
-- ones in one transaction under an advisory lock (see Migration.swift). Name new files
-- NNNN_what_it_does.sql with the next free version; never edit a file once it has shipped.
-- The runner creates its own bookkeeping table, schema_migrations.
SELECT 1;
