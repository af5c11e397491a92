DELETE FROM envelopes
WHERE sender_user_id NOT IN (SELECT id FROM users)
   OR sender_device_id NOT IN (SELECT id FROM devices);
ALTER TABLE envelopes ADD CONSTRAINT envelopes_sender_user_id_fkey
    FOREIGN KEY (sender_user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE envelopes ADD CONSTRAINT envelopes_sender_device_id_fkey
    FOREIGN KEY (sender_device_id) REFERENCES devices(id) ON DELETE CASCADE;
