-- A state file as the kit wrote it at schema 3 (the last before PRAGMA user_version): the
-- version still "1" in the meta table, with the columns faults.counts_usage (schema 2) and
-- journal.violations (schema 3) that kit added to older files on open. Made by the kit of
-- commit b504516 (MockState on a new Store, then sqlite3's iterdump). Account
-- acct_dafd00c82d54436a's token is itsocr_EH11mw72IwREqtjGg7ZxRMwvvWYVaCgb.
BEGIN TRANSACTION;
CREATE TABLE accounts (
    id TEXT PRIMARY KEY, plan TEXT NOT NULL, created_at TEXT NOT NULL);
INSERT INTO "accounts" VALUES('demo-free','free','2026-12-03T10:08:10.486Z');
INSERT INTO "accounts" VALUES('demo-pro','pro','2026-12-03T10:08:10.486Z');
INSERT INTO "accounts" VALUES('demo-enterprise','enterprise','2026-12-03T10:08:10.486Z');
INSERT INTO "accounts" VALUES('acct_dafd00c82d54436a','pro','2030-01-15T12:00:00.000Z');
CREATE TABLE faults (
    id TEXT PRIMARY KEY, account_id TEXT, status INTEGER, error TEXT,
    delay_ms INTEGER NOT NULL DEFAULT 0, remaining INTEGER, drop_connection INTEGER NOT NULL,
    created_at TEXT NOT NULL, counts_usage INTEGER NOT NULL DEFAULT 0);
INSERT INTO "faults" VALUES('flt_885c10847d564259','acct_dafd00c82d54436a',500,NULL,0,2,0,'2030-01-15T12:00:00.000Z',1);
CREATE TABLE fixtures (
    sha256 TEXT NOT NULL, prompt TEXT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL,
    media_type TEXT, PRIMARY KEY (sha256, prompt));
INSERT INTO "fixtures" VALUES('abababababababababababababababababababababababababababababababab','','receipt.png','TOTAL 42.00','image/png');
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY, time TEXT NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, status INTEGER NOT NULL, account_id TEXT, token_prefix TEXT,
    file_name TEXT, mime_type TEXT, file_size INTEGER, sha256 TEXT, fixture TEXT, prompt TEXT,
    error TEXT, hint TEXT, duration_ms REAL, violations TEXT);
INSERT INTO "journal" VALUES(1,'2030-01-15T12:00:00.000Z','POST','/api/v1/ocr',200,'acct_dafd00c82d54436a','itsocr_EH11m','receipt.png','image/png',5820,'abababababababababababababababababababababababababababababababab','receipt.png',NULL,NULL,NULL,1.5,NULL);
INSERT INTO "journal" VALUES(2,'2030-01-15T12:00:01.000Z','POST','/api/v1/ocr',200,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,2.5,'["body: ''text'' is a required property"]');
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO "meta" VALUES('schema_version','1');
INSERT INTO "meta" VALUES('frozen_now','2030-01-15T12:00:00.000Z');
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
INSERT INTO "tokens" VALUES('demo-free-token','demo-free','a0a86b6adc5f02f9cbf469442e3501da8894d854d63147380df9ba506f691b26','itsocr_FreeD','2026-12-03T10:08:10.486Z',NULL,NULL);
INSERT INTO "tokens" VALUES('demo-pro-token','demo-pro','53ea8b5d37bbfd044dfefe7996dbb59932df256a1d0d2b8b84f78d99471255d5','itsocr_ProDe','2026-12-03T10:08:10.486Z',NULL,NULL);
INSERT INTO "tokens" VALUES('demo-enterprise-token','demo-enterprise','e0ac778135c74b52251c4d7e97baffbc12f791db623e89579ddff3e1cf321a05','itsocr_Enter','2026-12-03T10:08:10.486Z',NULL,NULL);
INSERT INTO "tokens" VALUES('tok_815764c4ac0b42ce','acct_dafd00c82d54436a','01f3f4e09c7d927b6dd0d9f8cda95bac737a1b46a68f9c70a5b3f7de66634785','itsocr_EH11m','2030-01-15T12:00:00.000Z',NULL,NULL);
CREATE TABLE usage (
    account_id TEXT NOT NULL, period TEXT NOT NULL,
    images_used INTEGER NOT NULL DEFAULT 0, bytes_processed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, period));
INSERT INTO "usage" VALUES('acct_dafd00c82d54436a','2030-01',7,0);
CREATE INDEX tokens_by_account ON tokens (account_id);
COMMIT;
