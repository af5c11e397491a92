ALTER TABLE envelopes DROP COLUMN room_id;
DROP TABLE room_members;
DROP TABLE rooms;
