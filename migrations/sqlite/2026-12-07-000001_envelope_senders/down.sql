CREATE TABLE envelopes_old (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_device_id BIGINT  NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    sender_user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sender_device_id    BIGINT  NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    client_id           TEXT    NOT NULL,
    kind                INTEGER NOT NULL,
    ciphertext          BLOB    NOT NULL,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    room_id             BIGINT,
    UNIQUE (sender_device_id, client_id, recipient_device_id)
);
INSERT INTO envelopes_old (id, recipient_device_id, sender_user_id, sender_device_id, client_id,
                           kind, ciphertext, created_at, expires_at, room_id)
    SELECT id, recipient_device_id, sender_user_id, sender_device_id, client_id,
           kind, ciphertext, created_at, expires_at, room_id
    FROM envelopes
    WHERE sender_user_id IN (SELECT id FROM users)
      AND sender_device_id IN (SELECT id FROM devices);
DELETE FROM sqlite_sequence WHERE name = 'envelopes_old';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'envelopes_old', seq FROM sqlite_sequence WHERE name = 'envelopes';
DROP TABLE envelopes;
ALTER TABLE envelopes_old RENAME TO envelopes;
CREATE INDEX envelopes_queue ON envelopes(recipient_device_id, id);
