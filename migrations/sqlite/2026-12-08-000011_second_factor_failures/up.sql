-- Failed second-factor codes per account (issue #12 item 7), kept in the database so that a
-- restarted relay, and every relay sharing PostgreSQL, applies the same back-off and lock:
-- the failures since the last accepted code (forgotten a day after the last one), when the
-- last one happened, and until when codes are refused after too many of them.
ALTER TABLE users ADD COLUMN second_factor_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN second_factor_failed_at BIGINT;
ALTER TABLE users ADD COLUMN second_factor_locked_until BIGINT;
