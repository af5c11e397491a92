-- Devices, their prekeys, and the envelope queue (issue #4). The relay stores public keys and
-- ciphertext only. Times are Unix seconds.
CREATE TABLE devices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- crypto-core PublicIdentity encoding (version, Ed25519 key, X25519 key, signature).
    identity_key BLOB    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE signed_prekeys (
    device_id  BIGINT  PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    key_id     BIGINT  NOT NULL,
    -- crypto-core SignedPrekey encoding, verified against the device identity on upload.
    prekey     BLOB    NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE TABLE one_time_prekeys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id  BIGINT  NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    key_id     BIGINT  NOT NULL,
    -- crypto-core OneTimePrekey encoding.
    prekey     BLOB    NOT NULL,
    created_at BIGINT  NOT NULL,
    UNIQUE (device_id, key_id)
);

CREATE TABLE envelopes (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_device_id BIGINT  NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    sender_user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sender_device_id    BIGINT  NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    client_id           TEXT    NOT NULL,
    kind                INTEGER NOT NULL,
    ciphertext          BLOB    NOT NULL,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    UNIQUE (sender_device_id, client_id, recipient_device_id)
);
CREATE INDEX envelopes_queue ON envelopes(recipient_device_id, id);
