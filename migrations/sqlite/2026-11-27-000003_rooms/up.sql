-- Rooms (issue #4): groups of friends whose member devices each receive one copy of a room
-- envelope. The relay sees the membership and an optional room name, never message content.
-- Times are Unix seconds.
CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Kept when the creator's account is deleted (the room belongs to its members).
    created_by BIGINT  REFERENCES users(id) ON DELETE SET NULL,
    -- Optional, 1 to 64 characters; metadata the relay can read, so clients may leave it out.
    name       TEXT,
    created_at BIGINT  NOT NULL
);

CREATE TABLE room_members (
    room_id    BIGINT  NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- 'invited' or 'joined'.
    state      TEXT    NOT NULL CHECK (state IN ('invited', 'joined')),
    invited_by BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members(user_id);

-- The room a fanned-out envelope was sent to (NULL for a direct envelope).
ALTER TABLE envelopes ADD COLUMN room_id BIGINT;
