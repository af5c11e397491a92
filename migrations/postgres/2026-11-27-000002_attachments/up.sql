-- Encrypted attachment blobs (issue #4). The bytes live in files named by `id` under the blob
-- directory; this table holds their owner, size and expiry. The relay never has the key.
CREATE TABLE attachments (
    id         TEXT    PRIMARY KEY,
    owner_id   BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    size       BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX attachments_owner ON attachments(owner_id);
CREATE INDEX attachments_expiry ON attachments(expires_at);
