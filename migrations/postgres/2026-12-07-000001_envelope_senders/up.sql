-- An envelope answered `accepted` stays queued for its recipient when its sender then deletes
-- the sending device or the whole account: the sender columns keep the ids (which are never
-- reused) without foreign keys, so deleting the sender no longer cascades to queued envelopes.
-- The recipient column still cascades: a deleted recipient device has nobody to deliver to.
ALTER TABLE envelopes DROP CONSTRAINT envelopes_sender_user_id_fkey;
ALTER TABLE envelopes DROP CONSTRAINT envelopes_sender_device_id_fkey;
