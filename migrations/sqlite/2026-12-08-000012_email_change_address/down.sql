ALTER TABLE email_codes DROP COLUMN address;
