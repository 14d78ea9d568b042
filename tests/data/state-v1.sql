-- A state file as the kit wrote it at schema 1 (before PRAGMA user_version, and before the
-- columns faults.counts_usage and journal.violations): the version in the meta table. Made by
-- the kit of commit 61fcdf6 (a Backend on a new Store, then sqlite3's iterdump). Account
-- acct_51fac9ca26124205's token is itsocr_0YqZSEI7oyLFRM5FcrXI20PTIZNlbWMz.
BEGIN TRANSACTION;
CREATE TABLE accounts (
    id TEXT PRIMARY KEY, plan TEXT NOT NULL, created_at TEXT NOT NULL);
INSERT INTO "accounts" VALUES('demo-free','free','2026-12-03T07:07:26.602Z');
INSERT INTO "accounts" VALUES('demo-pro','pro','2026-12-03T07:07:26.602Z');
INSERT INTO "accounts" VALUES('demo-enterprise','enterprise','2026-12-03T07:07:26.602Z');
INSERT INTO "accounts" VALUES('acct_51fac9ca26124205','pro','2026-12-03T07:07:26.643Z');
CREATE TABLE faults (
    id TEXT PRIMARY KEY, account_id TEXT, status INTEGER, error TEXT,
    delay_ms INTEGER NOT NULL DEFAULT 0, remaining INTEGER, drop_connection INTEGER NOT NULL,
    created_at TEXT NOT NULL);
INSERT INTO "faults" VALUES('flt_0123456789abcdef','acct_51fac9ca26124205',500,NULL,0,2,0,'2030-01-15T12:00:00.000Z');
CREATE TABLE fixtures (
    sha256 TEXT NOT NULL, prompt TEXT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL,
    media_type TEXT, PRIMARY KEY (sha256, prompt));
INSERT INTO "fixtures" VALUES('abababababababababababababababababababababababababababababababab','','receipt.png','TOTAL 42.00','image/png');
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY, time TEXT NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, status INTEGER NOT NULL, account_id TEXT, token_prefix TEXT,
    file_name TEXT, mime_type TEXT, file_size INTEGER, sha256 TEXT, fixture TEXT, prompt TEXT,
    error TEXT, hint TEXT, duration_ms REAL);
INSERT INTO "journal" VALUES(1,'2030-01-15T12:00:00.000Z','POST','/api/v1/ocr',200,'acct_51fac9ca26124205','itsocr_0YqZS','receipt.png','image/png',5820,'abababababababababababababababababababababababababababababababab','receipt.png',NULL,NULL,NULL,1.5);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO "meta" VALUES('schema_version','1');
INSERT INTO "meta" VALUES('frozen_now','2030-01-15T12:00:00.000Z');
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
INSERT INTO "tokens" VALUES('demo-free-token','demo-free','a0a86b6adc5f02f9cbf469442e3501da8894d854d63147380df9ba506f691b26','itsocr_FreeD','2026-12-03T07:07:26.602Z',NULL,NULL);
INSERT INTO "tokens" VALUES('demo-pro-token','demo-pro','53ea8b5d37bbfd044dfefe7996dbb59932df256a1d0d2b8b84f78d99471255d5','itsocr_ProDe','2026-12-03T07:07:26.602Z',NULL,NULL);
INSERT INTO "tokens" VALUES('demo-enterprise-token','demo-enterprise','e0ac778135c74b52251c4d7e97baffbc12f791db623e89579ddff3e1cf321a05','itsocr_Enter','2026-12-03T07:07:26.602Z',NULL,NULL);
INSERT INTO "tokens" VALUES('tok_6b07ed3c2b934025','acct_51fac9ca26124205','9749321cd43575e30769f5230a03f586480fb8bccdd0c1f90f46a3e8273d8879','itsocr_0YqZS','2026-12-03T07:07:26.643Z',NULL,NULL);
CREATE TABLE usage (
    account_id TEXT NOT NULL, period TEXT NOT NULL,
    images_used INTEGER NOT NULL DEFAULT 0, bytes_processed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, period));
INSERT INTO "usage" VALUES('acct_51fac9ca26124205','2030-01',7,0);
CREATE INDEX tokens_by_account ON tokens (account_id);
COMMIT;
