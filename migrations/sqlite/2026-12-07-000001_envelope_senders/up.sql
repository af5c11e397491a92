-- An envelope answered `accepted` stays queued for its recipient when its sender then deletes
-- the sending device or the whole account: the sender columns keep the ids (which are never
-- reused: AUTOINCREMENT) without foreign keys, so deleting the sender no longer cascades to
-- queued envelopes. The recipient column still cascades: a deleted recipient device has nobody
-- to deliver to. SQLite cannot drop a foreign key, so the table is rebuilt; its AUTOINCREMENT
-- counter is carried over so that envelope ids are never reused either.
CREATE TABLE envelopes_new (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_device_id BIGINT  NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    sender_user_id      BIGINT  NOT NULL,
    sender_device_id    BIGINT  NOT NULL,
    client_id           TEXT    NOT NULL,
    kind                INTEGER NOT NULL,
    ciphertext          BLOB    NOT NULL,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    room_id             BIGINT,
    UNIQUE (sender_device_id, client_id, recipient_device_id)
);
INSERT INTO envelopes_new (id, recipient_device_id, sender_user_id, sender_device_id, client_id,
                           kind, ciphertext, created_at, expires_at, room_id)
    SELECT id, recipient_device_id, sender_user_id, sender_device_id, client_id,
           kind, ciphertext, created_at, expires_at, room_id
    FROM envelopes;
DELETE FROM sqlite_sequence WHERE name = 'envelopes_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'envelopes_new', seq FROM sqlite_sequence WHERE name = 'envelopes';
DROP TABLE envelopes;
ALTER TABLE envelopes_new RENAME TO envelopes;
CREATE INDEX envelopes_queue ON envelopes(recipient_device_id, id);
