-- Accounts, sessions, two-factor auth, ms_id holds, friends and blocks.
-- Times are Unix seconds (BIGINT) on both backends. Passwords, session tokens and codes are
-- stored only as hashes; the TOTP secret (users.totp_secret), which checking a code needs, is
-- sealed under the relay's secret key (relay-server/src/services/at_rest.rs).
CREATE TABLE users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    email             TEXT    NOT NULL UNIQUE,
    email_verified    BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash     TEXT    NOT NULL,
    ms_id             TEXT    NOT NULL UNIQUE,
    display_name      TEXT    NOT NULL,
    totp_secret       TEXT,
    totp_enabled      BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step    BIGINT,
    email_2fa_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    ms_id_changed_at  BIGINT,
    created_at        BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   BLOB    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    last_used_at BIGINT  NOT NULL,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE login_challenges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash BLOB    NOT NULL UNIQUE,
    expires_at BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL
);

CREATE TABLE email_codes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose      TEXT    NOT NULL,
    code_hash    BLOB    NOT NULL,
    expires_at   BIGINT  NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    consumed     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX email_codes_user ON email_codes(user_id, purpose);

CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BLOB   NOT NULL,
    used_at   BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

CREATE TABLE ms_id_holds (
    ms_id          TEXT   PRIMARY KEY,
    previous_owner BIGINT NOT NULL,
    held_until     BIGINT NOT NULL
);

CREATE TABLE friend_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    recipient_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    note         TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (sender_id, recipient_id)
);
CREATE INDEX friend_requests_recipient ON friend_requests(recipient_id);

CREATE TABLE friendships (
    user_low   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_high  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_low, user_high),
    CHECK (user_low < user_high)
);
CREATE INDEX friendships_high ON friendships(user_high);

CREATE TABLE blocks (
    blocker_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);

CREATE TABLE security_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX security_events_user ON security_events(user_id);
