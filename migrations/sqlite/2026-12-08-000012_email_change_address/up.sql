-- An address change is confirmed through the new address (issue #12 item 8): the code mailed
-- there is an e-mail code of purpose `change_email`, and its row keeps the new address until
-- the code is entered.
ALTER TABLE email_codes ADD COLUMN address TEXT;
