CREATE TABLE profiles (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    bio text,
    avatar_url text,
    location text,
    website_url text,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- One profile per existing user; the profile id is the user's id.
INSERT INTO profiles (id, user_id, bio, created_at, updated_at)
SELECT id, id, NULL, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM users;
