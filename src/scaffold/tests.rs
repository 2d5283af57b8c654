use super::*;
use crate::analysis::keyword::RESERVED;
use crate::analysis::rules::test::{lint, only};

fn request(template: &str, table: &str, column: &str, to: Option<&str>) -> Request {
    Request {
        name: "change".into(),
        template: template.into(),
        table: Some(table.into()),
        column: Some(column.into()),
        to: to.map(str::to_string),
        ..Request::default()
    }
}

/// Renders `request` with the built-in templates: `(folder name, up.sql,
/// down.sql)` per migration.
fn rendered(request: Request) -> Vec<(String, String, String)> {
    let scaffold = prepare(Path::new("/nonexistent"), request).unwrap();
    scaffold
        .render(Path::new("migrations"), Version(20250101000000), None)
        .unwrap()
        .into_iter()
        .map(|(w, files)| {
            let file = |n: &str| files.iter().find(|(f, _)| *f == n).unwrap().1.clone();
            (w.name, file("up.sql"), file("down.sql"))
        })
        .collect()
}

#[test]
fn versions_always_move_forward() {
    assert_eq!(
        next_version(Version(20250101000000), None),
        Version(20250101000000)
    );
    assert_eq!(
        next_version(Version(20250101000000), Some(Version(20250101000000))),
        Version(20250101000001)
    );
    assert_eq!(
        next_version(Version(20250101000000), Some(Version(20991231235959))),
        Version(21000101000000)
    );
}

#[test]
fn identifiers_are_one_or_two_plain_parts() {
    for ok in ["users", "_t", "public.users", "Users2"] {
        assert!(is_identifier(ok), "{ok}");
    }
    for bad in ["", "2users", "a.b.c", "users;", "my table", "a."] {
        assert!(!is_identifier(bad), "{bad}");
    }
}

#[test]
fn requests_are_checked_before_anything_is_loaded() {
    let message = |r: Request| prepare(Path::new("."), r).unwrap_err().to_string();
    let mut r = request("add-column", "users", "nick", None);
    r.name = "AddNick".into();
    assert_eq!(
        message(r),
        "`AddNick` is not a snake_case name (lowercase letters, digits, single underscores)\n  fix: keel new add_nick"
    );
    let mut r = request("rename-column", "users", "nick", None);
    r.table = None;
    assert_eq!(
        message(r),
        "the rename-column template needs --table\n  fix: keel new change --template rename-column --table TABLE --column COLUMN"
    );
    assert_eq!(
        message(request("rename-column", "users", "nick", None)),
        "the rename-column template needs --to\n  fix: keel new change --template rename-column --table TABLE --column COLUMN --to NEW"
    );
    assert_eq!(
        message(request("add-column", "users", "nick;drop", None)),
        "--column `nick;drop` is not an identifier (letters, digits and _, optionally schema.name)"
    );
    assert_eq!(
        message(request("rename-column", "users", "nick", Some("nick"))),
        "--column and --to are both `nick`: a rename needs a new name"
    );
    assert!(message(request("nope", "t", "c", None)).starts_with("there is no template `nope`"));
}

#[test]
fn rename_column_is_three_migrations_a_second_apart() {
    let scaffold = prepare(
        Path::new("/nonexistent"),
        request("rename-column", "app.users", "nick", Some("handle")),
    )
    .unwrap();
    let out = scaffold
        .render(
            Path::new("m"),
            Version(20250101000000),
            Some(Version(20250101000000)),
        )
        .unwrap();
    let names: Vec<String> = out
        .iter()
        .map(|(w, _)| w.path.display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "m/20250101000001_change_expand",
            "m/20250101000002_change_migrate",
            "m/20250101000003_change_contract"
        ]
    );
    let up = &out[0].1.iter().find(|(f, _)| *f == "up.sql").unwrap().1;
    assert!(
        up.contains("CREATE FUNCTION app.users_nick_handle_sync()"),
        "{up}"
    );
}

/// `keel new` and `keel lint` read one list: every reserved word given as
/// a table, column or new name comes out quoted in every template, so lint
/// finds nothing to quote; written bare, lint flags it.
#[test]
fn keel_new_never_writes_a_name_lint_flags() {
    let templates = [
        "add-table",
        "add-column",
        "drop-column",
        "add-index",
        "backfill",
    ];
    for word in RESERVED {
        let mut migrations = Vec::new();
        for t in templates {
            migrations.extend(rendered(request(t, word, word, None)));
        }
        migrations.extend(rendered(request("rename-column", word, "old", Some(word))));
        migrations.extend(rendered(request("rename-column", "t", word, Some("new"))));
        for (name, up, down) in migrations {
            let found = only("quote-identifier", lint(&up, Some(&down), true, Some("15")));
            assert!(
                found.is_empty(),
                "{word}: {name}/down.sql: {found:?}\n{down}"
            );
            let found = only("quote-identifier", lint(&up, None, true, Some("15")));
            assert!(found.is_empty(), "{word}: {name}/up.sql: {found:?}\n{up}");
        }
        let bare = lint(
            &format!("ALTER TABLE t ADD COLUMN {word} text;"),
            None,
            true,
            Some("15"),
        );
        assert!(
            bare.iter()
                .any(|f| f.rule == "quote-identifier" || f.rule == "syntax-error"),
            "{word} written bare passes lint"
        );
    }
}
