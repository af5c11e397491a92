-- Room roles (issue #12 item 4): 'admin' may rename the room, remove members, make members
-- admin and delete the room; 'member' may not. The creator starts as admin. A room whose
-- admins are all gone (left, or account deleted) is run by its longest-standing joined
-- member, decided when asked (services/rooms.rs), so no row needs rewriting then.
ALTER TABLE room_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
    CHECK (role IN ('admin', 'member'));
UPDATE room_members SET role = 'admin'
WHERE state = 'joined'
  AND user_id = (SELECT created_by FROM rooms WHERE rooms.id = room_members.room_id);
