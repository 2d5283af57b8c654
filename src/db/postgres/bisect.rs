//! A backfill batch that some row broke, bisected on the server: a
//! temporary PL/pgSQL function (in `pg_temp`, gone with the session) runs
//! the batch's UPDATE over halves of its key range, each in an exception
//! block (a subtransaction, like a savepoint), splits a half that fails
//! again, and returns the rows that stand alone with their own error. The
//! same bisection as the client's (`backfill::bisect`), in one round trip
//! instead of two per part: on a busy server the round trips, not the rows,
//! were what dirty data cost.

use super::Postgres;
use crate::db::{Bisected, DbError, DbErrorKind, Session, Value};

/// Keys travel as one text array literal (`{1,2,3}`): bind parameters have
/// no array type here. Parts are key ranges `(lower, upper]`, the first
/// from the batch's lower end, the last to its upper end; a part whose
/// left sibling went through while their parent failed holds the bad row
/// and is split without an attempt; a single row is always attempted.
/// Only data errors (classes 22 and 23) are caught; any other error (a
/// lock timeout, a cancel) ends the statement and the caller rolls back.
const CREATE: &str = r#"CREATE OR REPLACE FUNCTION pg_temp.keel_bisect(
    upd text, upd_first text, lo bigint, hi bigint, key_list text)
RETURNS TABLE (failed_key bigint, rows_changed bigint, attempts bigint,
               err_code text, err_message text, err_detail text)
LANGUAGE plpgsql AS $keel$
DECLARE
    keys bigint[] := key_list::bigint[];
    n int := coalesce(array_length(key_list::bigint[], 1), 0);
    froms int[] := ARRAY[1];
    tos int[] := ARRAY[n + 1];
    known_bad boolean[] := ARRAY[true];
    is_left boolean[] := ARRAY[false];
    top int := 1;
    f int; t int; bad boolean; lft boolean; mid int;
    lower_key bigint; upper_key bigint; cnt bigint;
    total bigint := 0; tries bigint := 0; went boolean;
    c text; m text; d text;
BEGIN
    WHILE top > 0 LOOP
        f := froms[top]; t := tos[top]; bad := known_bad[top]; lft := is_left[top];
        top := top - 1;
        CONTINUE WHEN f >= t;
        IF t - f = 1 OR NOT bad THEN
            lower_key := CASE WHEN f = 1 THEN lo ELSE keys[f - 1] END;
            upper_key := CASE WHEN t = n + 1 THEN hi ELSE keys[t - 1] END;
            tries := tries + 1;
            BEGIN
                IF lower_key IS NULL THEN
                    EXECUTE upd_first USING upper_key;
                ELSE
                    EXECUTE upd USING lower_key, upper_key;
                END IF;
                GET DIAGNOSTICS cnt = ROW_COUNT;
                total := total + cnt;
                went := true;
            EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
                GET STACKED DIAGNOSTICS c = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
                    d = PG_EXCEPTION_DETAIL;
                went := false;
            END;
            IF went THEN
                IF lft AND top > 0 THEN
                    known_bad[top] := true;
                END IF;
                CONTINUE;
            END IF;
            IF t - f = 1 THEN
                failed_key := keys[f]; rows_changed := NULL; attempts := NULL;
                err_code := c; err_message := m; err_detail := nullif(d, '');
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        mid := f + (t - f) / 2;
        top := top + 1;
        froms[top] := mid; tos[top] := t; known_bad[top] := false; is_left[top] := false;
        top := top + 1;
        froms[top] := f; tos[top] := mid; known_bad[top] := false; is_left[top] := true;
    END LOOP;
    failed_key := NULL; rows_changed := total; attempts := tries;
    err_code := NULL; err_message := NULL; err_detail := NULL;
    RETURN NEXT;
END
$keel$"#;

impl Postgres {
    /// Creates the session's bisection function; `false` when the role
    /// may not create temporary objects (or PL/pgSQL is missing), and the
    /// client bisects instead.
    pub(super) async fn create_bisect_function(&mut self) -> Result<bool, DbError> {
        match self.execute(CREATE).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind == DbErrorKind::Statement => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn bisect_on_server(
        &mut self,
        update: &str,
        update_from_start: &str,
        lo: Option<i64>,
        hi: i64,
        keys: &[i64],
    ) -> Result<Bisected, DbError> {
        let list: Vec<String> = keys.iter().map(i64::to_string).collect();
        let rows = self
            .query_with(
                "SELECT failed_key, rows_changed, attempts, err_code, err_message, err_detail \
                 FROM pg_temp.keel_bisect($1, $2, $3, $4, $5)",
                &[
                    Value::Text(update.into()),
                    Value::Text(update_from_start.into()),
                    lo.map_or(Value::Null, Value::Int),
                    Value::Int(hi),
                    Value::Text(format!("{{{}}}", list.join(","))),
                ],
            )
            .await?;
        let mut done = Bisected::default();
        for r in rows {
            match r[0].as_i64() {
                Some(key) => {
                    let mut e =
                        DbError::new(DbErrorKind::Statement, r[4].as_text().unwrap_or_default());
                    e.code = r[3].as_text();
                    e.detail = r[5].as_text();
                    done.failed.push((key, e));
                }
                None => {
                    done.updated = r[1].as_i64().unwrap_or(0).max(0) as u64;
                    done.attempts = r[2].as_i64().unwrap_or(0).max(0) as u64;
                }
            }
        }
        Ok(done)
    }
}
