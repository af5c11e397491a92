//! Table definitions shared by SQLite and PostgreSQL (written by hand: `print-schema` differs
//! per backend). Only types both backends map identically are used: BigInt, Integer, Text,
//! Binary (BLOB/BYTEA) and Bool; times are Unix seconds.

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        email_verified -> Bool,
        password_hash -> Text,
        ms_id -> Text,
        display_name -> Text,
        totp_secret -> Nullable<Text>,
        totp_enabled -> Bool,
        totp_last_step -> Nullable<BigInt>,
        email_2fa_enabled -> Bool,
        ms_id_changed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        second_factor_failures -> Integer,
        second_factor_failed_at -> Nullable<BigInt>,
        second_factor_locked_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Binary,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_used_at -> BigInt,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    login_challenges (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Binary,
        expires_at -> BigInt,
        attempts -> Integer,
        created_at -> BigInt,
    }
}

diesel::table! {
    email_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        purpose -> Text,
        code_hash -> Binary,
        expires_at -> BigInt,
        attempts -> Integer,
        consumed -> Bool,
        created_at -> BigInt,
        address -> Nullable<Text>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Binary,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    ms_id_holds (ms_id) {
        ms_id -> Text,
        previous_owner -> BigInt,
        held_until -> BigInt,
    }
}

diesel::table! {
    friend_requests (id) {
        id -> BigInt,
        sender_id -> BigInt,
        recipient_id -> BigInt,
        note -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    friendships (user_low, user_high) {
        user_low -> BigInt,
        user_high -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    blocks (blocker_id, blocked_id) {
        blocker_id -> BigInt,
        blocked_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    security_events (id) {
        id -> BigInt,
        user_id -> BigInt,
        kind -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    devices (id) {
        id -> BigInt,
        user_id -> BigInt,
        identity_key -> Binary,
        name -> Text,
        created_at -> BigInt,
        last_seen_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signed_prekeys (device_id) {
        device_id -> BigInt,
        key_id -> BigInt,
        prekey -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    one_time_prekeys (id) {
        id -> BigInt,
        device_id -> BigInt,
        key_id -> BigInt,
        prekey -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    envelopes (id) {
        id -> BigInt,
        recipient_device_id -> BigInt,
        sender_user_id -> BigInt,
        sender_device_id -> BigInt,
        client_id -> Text,
        kind -> Integer,
        ciphertext -> Binary,
        created_at -> BigInt,
        expires_at -> BigInt,
        room_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    rooms (id) {
        id -> BigInt,
        created_by -> Nullable<BigInt>,
        name -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    room_members (room_id, user_id) {
        room_id -> BigInt,
        user_id -> BigInt,
        state -> Text,
        invited_by -> BigInt,
        created_at -> BigInt,
        role -> Text,
    }
}

diesel::table! {
    attachments (id) {
        id -> Text,
        owner_id -> BigInt,
        size -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(devices -> users (user_id));
diesel::joinable!(signed_prekeys -> devices (device_id));
diesel::joinable!(one_time_prekeys -> devices (device_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(room_members -> rooms (room_id));
diesel::joinable!(login_challenges -> users (user_id));
diesel::joinable!(email_codes -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(security_events -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    login_challenges,
    email_codes,
    recovery_codes,
    ms_id_holds,
    friend_requests,
    friendships,
    blocks,
    security_events,
    devices,
    signed_prekeys,
    one_time_prekeys,
    envelopes,
    attachments,
    rooms,
    room_members,
);
