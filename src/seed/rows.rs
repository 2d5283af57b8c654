//! The rows of each sample table, generated lazily: an iterator yields one
//! row at a time, so memory stays flat however many rows are asked for.

use super::names;
use super::rng::Rng;
use super::text;
use crate::db::Value;
use chrono::{DateTime, Duration, Utc};
use std::ops::Range;

const YEAR_SECONDS: u64 = 365 * 24 * 3600;

/// Ids a foreign key may point at.
#[derive(Debug, Clone)]
pub(crate) enum IdPool {
    /// Every id in the range exists (the common case: ids without gaps).
    Range(Range<i64>),
    /// The ids of a table with gaps, read from the database.
    List(Vec<i64>),
}

impl IdPool {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            IdPool::Range(r) => r.is_empty(),
            IdPool::List(ids) => ids.is_empty(),
        }
    }

    fn pick(&self, rng: &mut Rng) -> i64 {
        match self {
            IdPool::Range(r) => r.start + rng.below(r.end.abs_diff(r.start)) as i64,
            IdPool::List(ids) => rng.pick(ids),
        }
    }
}

/// A moment in the year before `now`.
fn past_year(rng: &mut Rng, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(rng.below(YEAR_SECONDS) as i64)
}

fn text_or_null(value: Option<String>) -> Value {
    value.map_or(Value::Null, Value::Text)
}

/// `users (id, email, name, created_at)`.
pub(crate) const USER_COLUMNS: [&str; 4] = ["id", "email", "name", "created_at"];

pub(crate) fn users(
    ids: Range<i64>,
    mut rng: Rng,
    now: DateTime<Utc>,
) -> impl Iterator<Item = Vec<Value>> + Send {
    let first = ids.start;
    ids.map(move |id| {
        let name = names::name(&mut rng, id.abs_diff(first));
        vec![
            Value::Int(id),
            // Unique because the id is.
            Value::Text(format!("user{id}@example.com")),
            text_or_null(name),
            Value::Timestamp(past_year(&mut rng, now)),
        ]
    })
}

/// `profiles (id, user_id, bio, avatar_url, location, website_url,
/// created_at, updated_at)`: one per new user, as the sample's
/// add_user_profiles migration promises ("every user has a profile").
pub(crate) const PROFILE_COLUMNS: [&str; 8] = [
    "id",
    "user_id",
    "bio",
    "avatar_url",
    "location",
    "website_url",
    "created_at",
    "updated_at",
];

pub(crate) fn profiles(
    first_id: i64,
    users: Range<i64>,
    mut rng: Rng,
    now: DateTime<Utc>,
) -> impl Iterator<Item = Vec<Value>> + Send {
    let offset = first_id - users.start;
    users.map(move |user_id| {
        let id = user_id + offset;
        let created = past_year(&mut rng, now);
        let updated = (created + Duration::seconds(rng.below(30 * 24 * 3600) as i64)).min(now);
        vec![
            Value::Int(id),
            Value::Int(user_id),
            text_or_null(rng.chance(600).then(|| text::paragraph(&mut rng, 1, 2))),
            text_or_null(
                rng.chance(500)
                    .then(|| format!("https://example.com/avatars/{user_id}.png")),
            ),
            text_or_null(rng.chance(600).then(|| text::city(&mut rng).to_string())),
            text_or_null(
                rng.chance(200)
                    .then(|| format!("https://example.com/~user{user_id}")),
            ),
            Value::Timestamp(created),
            Value::Timestamp(updated),
        ]
    })
}

/// `posts (id, user_id, title, body, published, created_at)`.
pub(crate) const POST_COLUMNS: [&str; 6] =
    ["id", "user_id", "title", "body", "published", "created_at"];

pub(crate) fn posts(
    ids: Range<i64>,
    users: IdPool,
    mut rng: Rng,
    now: DateTime<Utc>,
) -> impl Iterator<Item = Vec<Value>> + Send {
    ids.map(move |id| {
        vec![
            Value::Int(id),
            Value::Int(users.pick(&mut rng)),
            Value::Text(text::title(&mut rng)),
            // Drafts without a body yet.
            text_or_null((!rng.chance(100)).then(|| text::paragraph(&mut rng, 1, 6))),
            Value::Bool(rng.chance(700)),
            Value::Timestamp(past_year(&mut rng, now)),
        ]
    })
}

/// `comments (id, post_id, user_id, body, created_at)`.
pub(crate) const COMMENT_COLUMNS: [&str; 5] = ["id", "post_id", "user_id", "body", "created_at"];

pub(crate) fn comments(
    ids: Range<i64>,
    posts: IdPool,
    users: IdPool,
    mut rng: Rng,
    now: DateTime<Utc>,
) -> impl Iterator<Item = Vec<Value>> + Send {
    ids.map(move |id| {
        vec![
            Value::Int(id),
            Value::Int(posts.pick(&mut rng)),
            Value::Int(users.pick(&mut rng)),
            Value::Text(text::comment(&mut rng)),
            Value::Timestamp(past_year(&mut rng, now)),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_stay_inside_their_pools() {
        let now = Utc::now();
        let pool = IdPool::List(vec![3, 7, 11]);
        for row in comments(1..500, IdPool::Range(10..20), pool, Rng::new(1), now) {
            let (Value::Int(post), Value::Int(user)) = (&row[1], &row[2]) else {
                panic!("{row:?}")
            };
            assert!((10..20).contains(post), "{post}");
            assert!([3, 7, 11].contains(user), "{user}");
        }
    }

    #[test]
    fn profiles_follow_their_users() {
        let rows: Vec<_> = profiles(50, 1001..1004, Rng::new(1), Utc::now()).collect();
        let ids: Vec<_> = rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
        assert_eq!(
            ids,
            [
                (Value::Int(50), Value::Int(1001)),
                (Value::Int(51), Value::Int(1002)),
                (Value::Int(52), Value::Int(1003))
            ]
        );
    }

    #[test]
    fn emails_are_unique_per_id() {
        let rows: Vec<_> = users(1..101, Rng::new(1), Utc::now()).collect();
        let mut emails: Vec<_> = rows.iter().map(|r| format!("{:?}", r[1])).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 100);
    }
}
