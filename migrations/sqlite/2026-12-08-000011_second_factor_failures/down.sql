ALTER TABLE users DROP COLUMN second_factor_locked_until;
ALTER TABLE users DROP COLUMN second_factor_failed_at;
ALTER TABLE users DROP COLUMN second_factor_failures;
