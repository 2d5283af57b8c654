//! keel lint against squawk on a corpus of real migration folders.
//!
//! ```text
//! KEEL_LINT_CORPUS=/work/lint-corpus cargo bench --bench lint
//! cargo bench --bench lint -- /path/to/corpus [--runs 7] [--squawk /path/to/squawk]
//!     [--before /path/to/an/older/keel] [--keel /path/to/keel]
//! ```
//!
//! The corpus is not part of the repository (the files keep their projects'
//! licenses): `bench/lint-corpus.txt` lists each file's repository, path,
//! commit and sha256, and the bench checks the files it finds against it.
//! Each repository is `<owner>__<name>/` with its migrations folder at one
//! commit. Without a corpus the bench says so and exits 0.
//!
//! Each repository is linted the way a user of its tool would lint it:
//! keel gets the migrations folder (one history, its layout detected, or
//! `--layout` where the file names cannot say: ory/pop, golang-migrate);
//! squawk gets the same files, with `--assume-in-transaction` for the files
//! the tool runs in a transaction. `KEEL_BENCH_BEFORE` (or `--before`) names
//! a second keel binary, an older build, which gets every file on its
//! command line (as older keels were run: each file alone). `KEEL_BENCH_KEEL`
//! (or `--keel`) lints with another keel binary than the one cargo built. It prints the
//! median wall time and max RSS over the runs, the findings by rule, and
//! sorts every finding into a real danger or noise by reading the statement
//! it points at (a judge of its own, sharing no code with keel's classifier
//! beyond the statement splitter). Recall is measured against the union of
//! real dangers any tool found. Then a table per class of issue 17: the
//! cases the judge finds in the corpus on its own reading of the SQL, and
//! how many of them each keel gets right.

use keel::sql::split;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a project's migration tool runs its files: the bench's own reading,
/// kept apart from keel's `layout.rs` on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// `NAME/up.sql` + `down.sql`, one transaction unless metadata.toml
    /// says `run_in_transaction = false`.
    Diesel,
    /// `NAME[.postgres].up.sql`; `.autocommit.` files run outside one.
    Pop,
    /// `-- +goose Up/Down` sections; `-- +goose NO TRANSACTION`.
    Goose,
    /// `-- migrate:up/down` sections; `transaction:false`.
    Dbmate,
    /// `N_name.up.sql`: the file is one multi-statement query (one
    /// implicit transaction when it holds more than one statement).
    GolangMigrate,
    /// `VERSION_name.sql`; `-- no-transaction` as the first line.
    Sqlx,
    /// `NAME/migration.sql`: always one transaction.
    Prisma,
    /// `V1__name.sql`: one transaction unless a statement cannot run in one.
    Flyway,
    Plain,
}

/// Repositories whose tool the file names alone do not say.
const KNOWN: &[(&str, Tool)] = &[
    ("LemmyNet__lemmy", Tool::Diesel),
    ("dani-garcia__vaultwarden", Tool::Diesel),
    ("rust-lang__crates.io", Tool::Diesel),
    ("ory__kratos", Tool::Pop),
    ("goharbor__harbor", Tool::GolangMigrate),
    ("mattermost__mattermost", Tool::GolangMigrate),
    ("hatchet-dev__hatchet", Tool::Goose),
    ("Permify__permify", Tool::Goose),
    ("hoppscotch__hoppscotch", Tool::Prisma),
    ("atuinsh__atuin", Tool::Sqlx),
    ("windmill-labs__windmill", Tool::Sqlx),
    ("kestra-io__kestra", Tool::Flyway),
];

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Diesel => "diesel",
            Tool::Pop => "ory/pop",
            Tool::Goose => "goose",
            Tool::Dbmate => "dbmate",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Sqlx => "sqlx",
            Tool::Prisma => "Prisma",
            Tool::Flyway => "Flyway",
            Tool::Plain => "plain",
        }
    }

    /// `keel lint --layout` where keel's detection cannot know the tool
    /// from the file names (a pop `NAME.up.sql`, golang-migrate's pairs).
    fn keel_layout(self) -> Option<&'static str> {
        match self {
            Tool::Pop => Some("pop"),
            Tool::GolangMigrate => Some("golang-migrate"),
            _ => None,
        }
    }

    fn detect(files: &[(PathBuf, String)]) -> Tool {
        let name = |p: &PathBuf| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string()
        };
        let any_text = |m: &str| {
            files
                .iter()
                .any(|(_, t)| t.lines().any(|l| l.trim_start().starts_with(m)))
        };
        let any_name = |f: &dyn Fn(&str) -> bool| files.iter().any(|(p, _)| f(&name(p)));
        if any_text("-- +goose") {
            Tool::Goose
        } else if any_text("-- migrate:up") {
            Tool::Dbmate
        } else if any_name(&|n| n == "migration.sql") {
            Tool::Prisma
        } else if any_name(&|n| n == "up.sql") {
            Tool::Diesel
        } else if any_name(&|n| n.contains(".postgres.") || n.contains(".autocommit.")) {
            Tool::Pop
        } else if any_name(&|n| n.starts_with('V') && n.contains("__")) {
            Tool::Flyway
        } else if any_name(&|n| n.ends_with(".up.sql")) {
            Tool::GolangMigrate
        } else if any_name(&|n| {
            n.split('_')
                .next()
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        }) {
            Tool::Sqlx
        } else {
            Tool::Plain
        }
    }

    /// Whether the tool runs this file in one transaction.
    fn in_transaction(self, path: &Path, text: &str, statements: usize) -> bool {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_lowercase();
        let line_is = |m: &str| text.lines().any(|l| l.trim().eq_ignore_ascii_case(m));
        match self {
            Tool::Diesel => !std::fs::read_to_string(path.with_file_name("metadata.toml"))
                .is_ok_and(|m| m.replace(' ', "").contains("run_in_transaction=false")),
            Tool::Pop => !name.contains(".autocommit."),
            Tool::Goose => !line_is("-- +goose NO TRANSACTION"),
            Tool::Dbmate => !text.lines().any(|l| {
                l.trim_start().starts_with("-- migrate:") && l.contains("transaction:false")
            }),
            Tool::GolangMigrate => statements > 1,
            Tool::Sqlx => text.lines().next().map(str::trim) != Some("-- no-transaction"),
            Tool::Prisma => true,
            Tool::Flyway => {
                let conf = std::fs::read_to_string(format!("{}.conf", path.display()))
                    .is_ok_and(|c| c.replace(' ', "").contains("executeInTransaction=false"));
                !conf && !has(&words(text), &["concurrently"])
            }
            Tool::Plain => false,
        }
    }
}

/// One repository of the corpus: its migrations folder and its files.
struct Repo {
    dir: String,
    tool: Tool,
    /// The migrations folder, relative to the corpus.
    root: PathBuf,
    /// Its .sql files, relative to the corpus, in the order the tool
    /// applies them.
    files: Vec<PathBuf>,
}

fn repos(corpus: &Path, files: &[PathBuf]) -> Vec<Repo> {
    let mut by_dir: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for f in files {
        let top = f
            .iter()
            .next()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        by_dir.entry(top).or_default().push(f.clone());
    }
    by_dir
        .into_iter()
        .map(|(dir, mut files)| {
            files.sort_by(|a, b| natural(a, b));
            let texts: Vec<(PathBuf, String)> = files
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        std::fs::read_to_string(corpus.join(f)).unwrap_or_default(),
                    )
                })
                .collect();
            let tool = KNOWN
                .iter()
                .find(|(d, _)| *d == dir)
                .map_or_else(|| Tool::detect(&texts), |(_, t)| *t);
            // The deepest folder holding every file (Prisma's and diesel's
            // per-migration folders sit under it).
            let mut root: PathBuf = files[0].parent().unwrap_or(Path::new("")).to_path_buf();
            for f in &files {
                while !f.starts_with(&root) {
                    root = root.parent().unwrap_or(Path::new("")).to_path_buf();
                }
            }
            if files.iter().all(|f| f.parent() == Some(root.as_path()))
                && matches!(tool, Tool::Diesel | Tool::Prisma)
            {
                root = root.parent().unwrap_or(Path::new("")).to_path_buf();
            }
            Repo {
                dir,
                tool,
                root,
                files,
            }
        })
        .collect()
}

/// Paths in apply order: runs of digits compare as numbers.
fn natural(a: &Path, b: &Path) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let d = c.is_ascii_digit();
            match out.last_mut() {
                Some((k, t)) if *k == d => t.push(c),
                _ => out.push((d, c.to_string())),
            }
        }
        out
    }
    let (a, b) = (chunks(&a.to_string_lossy()), chunks(&b.to_string_lossy()));
    for (x, y) in a.iter().zip(&b) {
        let o = if x.0 && y.0 {
            let (p, q) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
            p.len().cmp(&q.len()).then_with(|| p.cmp(q))
        } else {
            x.1.cmp(&y.1)
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// One tool's invocations over the corpus, run and timed together.
struct Runner {
    label: &'static str,
    cmds: Vec<(Command, PathBuf)>,
    reader: fn(&Path) -> Vec<Found>,
}

impl Runner {
    /// Wall time (summed over the invocations) and max RSS of one run.
    fn run(&mut self, cwd: &Path) -> (Duration, i64) {
        let mut wall = Duration::ZERO;
        let mut rss = 0;
        for (cmd, out) in &mut self.cmds {
            let (t, m) = measure(cmd, cwd, out);
            wall += t;
            rss = rss.max(m);
        }
        (wall, rss)
    }

    fn findings(&self) -> Vec<Found> {
        self.cmds
            .iter()
            .flat_map(|(_, out)| (self.reader)(out))
            .collect()
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut corpus = std::env::var_os("KEEL_LINT_CORPUS").map(PathBuf::from);
    let mut runs = 7usize;
    let mut squawk = std::env::var("SQUAWK").unwrap_or_else(|_| "squawk".into());
    let mut before = std::env::var_os("KEEL_BENCH_BEFORE").map(PathBuf::from);
    let mut keel = std::env::var_os("KEEL_BENCH_KEEL").map(PathBuf::from);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            "--squawk" => squawk = args.next().unwrap_or(squawk),
            "--before" => before = args.next().map(PathBuf::from),
            "--keel" => keel = args.next().map(PathBuf::from),
            _ if !a.starts_with('-') => corpus = Some(PathBuf::from(a)),
            _ => {}
        }
    }
    let Some(corpus) = corpus.filter(|c| c.is_dir()) else {
        println!(
            "lint bench skipped: no corpus. Set KEEL_LINT_CORPUS to a folder holding the files \
             listed in bench/lint-corpus.txt (or pass the folder as an argument)."
        );
        return;
    };
    let files = sql_files(&corpus);
    if files.is_empty() {
        println!(
            "lint bench skipped: no .sql files under {}",
            corpus.display()
        );
        return;
    }
    check_manifest(&corpus);
    let squawk = resolve(&squawk);
    let keel = keel.unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keel")));
    let version = Command::new(&squawk).arg("--version").output();
    let Ok(version) = version else {
        println!(
            "lint bench: squawk not found ({}); install it (`cargo install squawk` or `pip install squawk-cli`) or set SQUAWK",
            squawk.display()
        );
        return;
    };
    let before = before.filter(|b| b.is_file());
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(corpus.join(f)).map_or(0, |m| m.len()))
        .sum();
    let repos = repos(&corpus, &files);
    let judge = Judge::new(&corpus, &repos);
    println!(
        "corpus: {} ({} files, {:.1} MB, {} repositories); {}; keel {}",
        corpus.display(),
        files.len(),
        bytes as f64 / 1e6,
        repos.len(),
        String::from_utf8_lossy(&version.stdout).trim(),
        keel.display()
    );
    if let Some(b) = &before {
        println!(
            "keel before: {} (each file on the command line, alone)",
            b.display()
        );
    }
    println!(
        "\n{:<26} {:<15} {:>6} {:>5} {:>6} {:>7}  keel gets",
        "repository", "tool", "files", "down", "in tx", "no tx"
    );
    for r in &repos {
        let down = r.files.iter().filter(|f| judge.file(f).down_file).count();
        let tx = r.files.iter().filter(|f| judge.file(f).in_tx).count();
        let layout = r
            .tool
            .keel_layout()
            .map_or_else(String::new, |l| format!(" --layout {l}"));
        println!(
            "{:<26} {:<15} {:>6} {:>5} {:>6} {:>7}  {}{}",
            r.dir,
            r.tool.name(),
            r.files.len(),
            down,
            tx,
            r.files.len() - tx,
            r.root.display(),
            layout
        );
    }

    let out_dir = std::env::temp_dir().join(format!("keel-lint-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let mut runners: Vec<Runner> = Vec::new();
    let mut sq = Runner {
        label: "squawk",
        cmds: Vec::new(),
        reader: read_squawk,
    };
    let mut after = Runner {
        label: "keel",
        cmds: Vec::new(),
        reader: read_keel,
    };
    let mut old = Runner {
        label: "keel before",
        cmds: Vec::new(),
        reader: read_keel,
    };
    for (i, r) in repos.iter().enumerate() {
        for tx in [true, false] {
            let group: Vec<&PathBuf> = r
                .files
                .iter()
                .filter(|f| judge.file(f).in_tx == tx)
                .collect();
            if group.is_empty() {
                continue;
            }
            let mut c = Command::new(&squawk);
            c.args(["--pg-version=15", "--reporter=json"]);
            if tx {
                c.arg("--assume-in-transaction");
            }
            c.args(group);
            sq.cmds
                .push((c, out_dir.join(format!("squawk-{i}-{tx}.json"))));
        }
        let mut c = Command::new(&keel);
        c.args(["--format", "json", "lint", "--pg-version", "15"]);
        if let Some(l) = r.tool.keel_layout() {
            c.args(["--layout", l]);
        }
        c.arg(&r.root);
        after.cmds.push((c, out_dir.join(format!("keel-{i}.json"))));
        if let Some(b) = &before {
            let mut c = Command::new(b);
            c.args(["--format", "json", "lint", "--pg-version", "15"]);
            c.args(&r.files);
            old.cmds.push((c, out_dir.join(format!("before-{i}.json"))));
        }
    }
    runners.push(sq);
    if before.is_some() {
        runners.push(old);
    }
    runners.push(after);

    let mut times: Vec<Vec<(Duration, i64)>> = vec![Vec::new(); runners.len()];
    for _ in 0..runs.max(1) {
        for (i, r) in runners.iter_mut().enumerate() {
            times[i].push(r.run(&corpus));
        }
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{:<12} {:>10} {:>10}   (median of {} runs; load average after: {})",
        "",
        "wall",
        "max RSS",
        runs,
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (st, sm) = median(&times[0]);
    for (i, r) in runners.iter().enumerate() {
        let (t, m) = median(&times[i]);
        println!(
            "{:<12} {:>8.1}ms {:>8.1}MB   {:.2}x squawk's time, {:.2}x its memory",
            r.label,
            ms(t),
            m as f64 / 1024.0,
            ms(t) / ms(st),
            m as f64 / sm as f64
        );
    }

    let found: Vec<Vec<Found>> = runners.iter().map(Runner::findings).collect();
    let _ = std::fs::remove_dir_all(&out_dir);
    let sorted: Vec<Sorted> = found.iter().map(|f| judge.sort(f)).collect();
    for (r, f) in runners.iter().zip(&found) {
        by_rule(r.label, f);
    }
    let labels: Vec<&str> = runners.iter().map(|r| r.label).collect();
    let row = |name: &str, vals: Vec<String>| {
        let mut s = format!("{name:<40}");
        for v in vals {
            s.push_str(&format!(" {v:>12}"));
        }
        println!("{s}");
    };
    let union: BTreeSet<&Danger> = sorted.iter().flat_map(|s| s.dangers.keys()).collect();
    println!("\nfindings by class (a statement flagged twice by one tool counts once as a danger)");
    row("", labels.iter().map(|l| l.to_string()).collect());
    row(
        "all findings",
        found.iter().map(|f| f.len().to_string()).collect(),
    );
    row(
        "real dangers (statements)",
        sorted.iter().map(|s| s.dangers.len().to_string()).collect(),
    );
    row(
        "  findings on them",
        sorted
            .iter()
            .map(|s| s.danger_findings.to_string())
            .collect(),
    );
    let total = |m: &BTreeMap<&str, usize>| m.values().sum::<usize>();
    row(
        "noise (findings)",
        sorted.iter().map(|s| total(&s.noise).to_string()).collect(),
    );
    let reasons: BTreeSet<&str> = sorted
        .iter()
        .flat_map(|s| s.noise.keys().copied())
        .collect();
    for r in reasons {
        row(
            &format!("  {r}"),
            sorted
                .iter()
                .map(|s| s.noise.get(r).copied().unwrap_or(0).to_string())
                .collect(),
        );
    }
    let recall = |d: &HashMap<Danger, usize>| {
        if union.is_empty() {
            100.0
        } else {
            100.0 * d.len() as f64 / union.len() as f64
        }
    };
    row(
        &format!("recall on the {} dangers", union.len()),
        sorted
            .iter()
            .map(|s| format!("{:.1}%", recall(&s.dangers)))
            .collect(),
    );
    let mut kinds: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for d in &union {
        let e = kinds
            .entry(d.kind)
            .or_insert_with(|| vec![0; sorted.len() + 1]);
        e[0] += 1;
        for (i, s) in sorted.iter().enumerate() {
            e[i + 1] += usize::from(s.dangers.contains_key(*d));
        }
    }
    println!();
    row(
        "dangers by kind",
        std::iter::once("all".to_string())
            .chain(labels.iter().map(|l| l.to_string()))
            .collect(),
    );
    for (kind, n) in &kinds {
        row(
            &format!("  {kind}"),
            n.iter().map(|x| x.to_string()).collect(),
        );
    }
    let keel_at = sorted.len() - 1;
    let missed: Vec<&&Danger> = union
        .iter()
        .filter(|d| !sorted[keel_at].dangers.contains_key(**d))
        .collect();
    if !missed.is_empty() {
        println!("\ndangers keel missed:");
        for d in missed.iter().take(40) {
            println!(
                "  {}:{} {} — {}",
                d.file,
                d.line,
                d.kind,
                first_line(&d.sql)
            );
        }
    }

    // Issue 17's classes: cases found by the judge, each keel's verdict.
    let keels: Vec<(usize, &str)> = runners
        .iter()
        .enumerate()
        .filter(|(_, r)| r.label != "squawk")
        .map(|(i, r)| (i, r.label))
        .collect();
    let cases = judge.cases();
    println!(
        "\nissue 17 classes (cases: the bench's own reading of the SQL; right/wrong per keel)"
    );
    let mut head = format!("{:<58} {:>6}", "class", "cases");
    for (_, l) in &keels {
        head.push_str(&format!(" {:>16}", format!("{l} right/wrong")));
    }
    println!("{head}");
    let verbose = std::env::var_os("LINT_BENCH_VERBOSE").is_some();
    let mut wrong_lists: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(u8, &str), Vec<&Case>> = BTreeMap::new();
    for c in &cases {
        groups.entry((c.class, c.what)).or_default().push(c);
    }
    for ((class, what), list) in &groups {
        let mut line = format!("{:<58} {:>6}", format!("{class} {what}"), list.len());
        for (i, label) in &keels {
            let by_line = index(&found[*i]);
            let wrong: Vec<&&Case> = list.iter().filter(|c| !c.right(&by_line)).collect();
            line.push_str(&format!(
                " {:>16}",
                format!("{}/{}", list.len() - wrong.len(), wrong.len())
            ));
            for c in wrong {
                wrong_lists.push((
                    format!("{label} wrong: class {class} {what}"),
                    format!("{}:{} {}", c.file, c.line, first_line(&c.sql)),
                ));
            }
        }
        println!("{line}");
    }
    for (i, label) in &keels {
        let (n, bad) = judge.fixes(&found[*i]);
        let all_bad: usize = bad.values().map(Vec::len).sum::<usize>();
        let failing: BTreeSet<usize> = bad.values().flatten().copied().collect();
        println!(
            "4 fixes that fail as printed, {label}: {} of {n} fixes ({} reasons)",
            failing.len(),
            all_bad
        );
        for (why, which) in &bad {
            println!("    {:<52} {:>6}", why, which.len());
            for &k in which.iter().take(if verbose { usize::MAX } else { 0 }) {
                let f = &found[*i][k];
                wrong_lists.push((
                    format!("{label} wrong: class 4 {why}"),
                    format!("{}:{} [{}] {}", f.file, f.line, f.rule, f.suggestion),
                ));
            }
        }
    }
    if verbose {
        println!("\ncases keel gets wrong:");
        for (what, at) in &wrong_lists {
            println!("  {what}: {at}");
        }
        println!("\nkeel noise:");
        for (f, why) in &sorted[keel_at].noise_list {
            println!("  {}:{} {} [{}]", f.file, f.line, f.rule, why);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn first_line(sql: &str) -> String {
    let l = sql.trim_start().lines().next().unwrap_or_default();
    l.chars().take(90).collect()
}

/// A squawk on PATH is often a pyenv shim (a shell script): time the binary.
fn resolve(squawk: &str) -> PathBuf {
    if let Ok(out) = Command::new("pyenv").args(["which", squawk]).output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(squawk)
}

fn sql_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sql") {
                out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Compares the corpus with bench/lint-corpus.txt (owner__name/path →
/// sha256), every file it lists (.sql and the tools' own settings files).
fn check_manifest(root: &Path) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/lint-corpus.txt");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return;
    };
    let (mut ok, mut changed, mut missing) = (0, 0, 0);
    let mut listed = BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        if let [repo, path, _commit, sha] = cols[..] {
            let key = format!("{}/{}", repo.replace('/', "__"), path);
            match std::fs::read(root.join(&key)) {
                Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == sha => ok += 1,
                Ok(_) => changed += 1,
                Err(_) => missing += 1,
            }
            listed.insert(key);
        }
    }
    let extra = sql_files(root)
        .iter()
        .filter(|f| !listed.contains(&f.to_string_lossy().to_string()))
        .count();
    println!(
        "manifest: {ok} files match bench/lint-corpus.txt, {changed} differ, {missing} missing, {extra} .sql not listed"
    );
}

/// Runs the command once; wall time and the child's max RSS in KiB.
// wait4 reaps the child (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command, cwd: &Path, out: &Path) -> (Duration, i64) {
    let file = std::fs::File::create(out).expect("output file");
    let start = Instant::now();
    let mut child = cmd
        .current_dir(cwd)
        .stdout(Stdio::from(file))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped != pid {
        let _ = child.wait();
    }
    drop(child);
    (start.elapsed(), usage.ru_maxrss)
}

fn median(runs: &[(Duration, i64)]) -> (Duration, i64) {
    let mut t: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    let mut m: Vec<i64> = runs.iter().map(|r| r.1).collect();
    t.sort();
    m.sort();
    (t[t.len() / 2], m[m.len() / 2])
}

#[derive(Debug, Clone)]
struct Found {
    rule: String,
    file: String,
    line: usize,
    /// keel's: error, warning or info (squawk's: its own level).
    severity: String,
    /// keel's fix text (squawk: empty).
    suggestion: String,
}

/// squawk's JSON reporter counts lines from 0.
fn read_squawk(path: &Path) -> Vec<Found> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .map(|f| Found {
            rule: f["rule_name"].as_str().unwrap_or("?").to_string(),
            file: f["file"].as_str().unwrap_or_default().to_string(),
            line: f["line"].as_u64().unwrap_or(0) as usize + 1,
            severity: f["level"].as_str().unwrap_or_default().to_lowercase(),
            suggestion: String::new(),
        })
        .collect()
}

fn read_keel(path: &Path) -> Vec<Found> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| Found {
            rule: f["rule"].as_str().unwrap_or("?").to_string(),
            file: f["file"].as_str().unwrap_or_default().to_string(),
            line: f["line"].as_u64().unwrap_or(0) as usize,
            severity: f["severity"].as_str().unwrap_or_default().to_string(),
            suggestion: f["suggestion"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Findings by file, for the class checks.
fn index(found: &[Found]) -> HashMap<&str, Vec<&Found>> {
    let mut m: HashMap<&str, Vec<&Found>> = HashMap::new();
    for f in found {
        m.entry(f.file.as_str()).or_default().push(f);
    }
    m
}

fn by_rule(tool: &str, findings: &[Found]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *counts.entry(&f.rule).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    println!("\n{tool}: {} findings by rule", findings.len());
    for (rule, n) in counts {
        println!("  {n:>6}  {rule}");
    }
}

fn is_down(path: &Path) -> bool {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_lowercase();
    name == "down.sql"
        || name.ends_with(".down.sql")
        || name.ends_with("_down.sql")
        || name.ends_with("-down.sql")
        // Flyway's undo files: U1__name.sql.
        || (name.starts_with('u') && name[1..].starts_with(|c: char| c.is_ascii_digit()) && name.contains("__"))
}

/// A real danger: one statement of one file, and what makes it dangerous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Danger {
    file: String,
    line: usize,
    kind: &'static str,
    sql: String,
}

#[derive(Default)]
struct Sorted {
    /// Dangerous statements flagged, with how many findings each got.
    dangers: HashMap<Danger, usize>,
    danger_findings: usize,
    noise: BTreeMap<&'static str, usize>,
    noise_list: Vec<(Found, &'static str)>,
}

/// A statement of a file: lines, text, and whether it is one a DO block's
/// body runs (then `line..=end` lie inside the DO statement's).
#[derive(Debug, Clone)]
struct Stmt {
    line: usize,
    end: usize,
    sql: String,
    in_do: bool,
}

/// One file, split into statements, with how its tool runs it.
struct Parsed {
    repo: usize,
    tool: Tool,
    stmts: Vec<Stmt>,
    /// Tables this file creates (a `CREATE TABLE IF NOT EXISTS` of a table
    /// an earlier file made is not one).
    created: BTreeSet<String>,
    in_tx: bool,
    down_file: bool,
    /// 1-based lines in a goose/dbmate down section.
    down_lines: BTreeSet<usize>,
}

impl Parsed {
    fn is_down_at(&self, line: usize) -> bool {
        self.down_file || self.down_lines.contains(&line)
    }

    /// The innermost statement holding `line`.
    fn at(&self, line: usize) -> Option<&Stmt> {
        self.stmts
            .iter()
            .filter(|s| s.line <= line && line <= s.end)
            .min_by_key(|s| s.end - s.line)
    }
}

/// What a keel must do with a case of a class.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A finding in the case's lines, of one of these rules (any error or
    /// warning when empty).
    Flag(&'static [&'static str]),
    /// No finding in the case's lines of these rules (no error or warning
    /// when empty).
    NoFlag(&'static [&'static str]),
}

/// One case of one of issue 17's classes, found by the judge.
#[derive(Debug, Clone)]
struct Case {
    class: u8,
    what: &'static str,
    file: String,
    line: usize,
    end: usize,
    sql: String,
    expect: Expect,
}

impl Case {
    fn right(&self, by_file: &HashMap<&str, Vec<&Found>>) -> bool {
        let here = by_file
            .get(self.file.as_str())
            .into_iter()
            .flatten()
            .filter(|f| self.line <= f.line && f.line <= self.end);
        let matches = |rules: &[&str], f: &&&Found| {
            if rules.is_empty() {
                f.severity == "error" || f.severity == "warning"
            } else {
                rules.contains(&f.rule.as_str())
            }
        };
        match self.expect {
            Expect::Flag(rules) => here.clone().any(|f| matches(rules, &f)),
            Expect::NoFlag(rules) => !here.clone().any(|f| matches(rules, &f)),
        }
    }
}

/// Reads the statement a finding points at and decides, on its own rules,
/// whether it is a real danger to a running application.
struct Judge {
    files: HashMap<String, Parsed>,
    /// Per repository: tables created with PARTITION BY.
    partitioned: Vec<BTreeSet<String>>,
    /// ALTER … TYPE statements (file, line) that widen a varchar whose old
    /// length an earlier statement gave: no rewrite.
    widenings: BTreeSet<(String, usize)>,
    /// `IF NOT EXISTS` statements (file, line) on what the history made.
    noops: BTreeSet<(String, usize)>,
    cases: Vec<Case>,
}

impl Judge {
    fn new(root: &Path, repos: &[Repo]) -> Self {
        let mut j = Judge {
            files: HashMap::new(),
            partitioned: vec![BTreeSet::new(); repos.len()],
            widenings: BTreeSet::new(),
            noops: BTreeSet::new(),
            cases: Vec::new(),
        };
        for (ri, r) in repos.iter().enumerate() {
            let mut history = History::default();
            for f in &r.files {
                let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
                let mut parsed = parse(ri, r.tool, &root.join(f), &text);
                let key = f.to_string_lossy().to_string();
                if !parsed.down_file {
                    history.file(&key, &mut parsed, &mut j.cases, &mut j.partitioned[ri]);
                }
                j.files.insert(key, parsed);
            }
        }
        j.noops = j
            .cases
            .iter()
            .filter(|c| c.what.starts_with("no-op"))
            .map(|c| (c.file.clone(), c.line))
            .collect();
        j.widenings = j
            .cases
            .iter()
            .filter(|c| c.what.starts_with("varchar widening"))
            .map(|c| (c.file.clone(), c.line))
            .collect();
        // The files' own cases (classes 1, 2, 3, 5, 6), the created tables
        // corrected by the history (done above).
        let mut more = Vec::new();
        for (key, p) in &j.files {
            let down = key
                .strip_suffix(".up.sql")
                .map(|stem| format!("{stem}.down.sql"));
            if !p.down_file
                && let Some(down) = down.filter(|d| j.files.contains_key(d))
            {
                more.push(Case {
                    class: 5,
                    what: "NAME[.postgres|.autocommit].up.sql paired with its down (no missing-down)",
                    file: key.clone(),
                    line: 0,
                    end: usize::MAX,
                    sql: format!("(pair with {down})"),
                    expect: Expect::NoFlag(&["missing-down"]),
                });
            }
        }
        for (key, p) in &j.files {
            file_cases(key, p, &j.files, &mut more);
        }
        j.cases.extend(more);
        j.cases.sort_by(|a, b| {
            (a.class, a.what, &a.file, a.line).cmp(&(b.class, b.what, &b.file, b.line))
        });
        j
    }

    fn file(&self, f: &Path) -> &Parsed {
        &self.files[&f.to_string_lossy().to_string()]
    }

    fn cases(&self) -> Vec<Case> {
        self.cases.clone()
    }

    fn sort(&self, findings: &[Found]) -> Sorted {
        let mut out = Sorted::default();
        for f in findings {
            match self.judge(f) {
                Ok(d) => {
                    out.danger_findings += 1;
                    *out.dangers.entry(d).or_default() += 1;
                }
                Err(why) => {
                    *out.noise.entry(why).or_default() += 1;
                    out.noise_list.push((f.clone(), why));
                }
            }
        }
        out
    }

    fn judge(&self, f: &Found) -> Result<Danger, &'static str> {
        if [
            "require-timeout-settings",
            "require-lock-timeout",
            "require-statement-timeout",
        ]
        .contains(&f.rule.as_str())
        {
            return Err("missing timeout");
        }
        if f.rule == "syntax-error" {
            return Err("syntax error / unparsed");
        }
        if [
            "missing-down",
            "file-name",
            "reversibility-mismatch",
            "quote-identifier",
        ]
        .contains(&f.rule.as_str())
        {
            return Err("file-level rule");
        }
        let Some(parsed) = self.files.get(&f.file) else {
            return Err("not at a statement");
        };
        let Some(stmt) = parsed.at(f.line) else {
            return Err("not at a statement");
        };
        if parsed.is_down_at(stmt.line) {
            return Err("in a down file or section");
        }
        let w = words(&stmt.sql);
        let Some((kind, table)) = danger_in(&w, parsed, stmt) else {
            return Err(style_or_safe(&w, &f.rule));
        };
        if kind == "column type change (rewrite)"
            && self.widenings.contains(&(f.file.clone(), stmt.line))
        {
            return Err("varchar widening (old type from the history)");
        }
        if self.noops.contains(&(f.file.clone(), stmt.line)) {
            return Err("no-op IF NOT EXISTS (object from the history)");
        }
        if kind == "blocking index build"
            && has(&w, &["on", "only"])
            && table
                .as_ref()
                .is_some_and(|t| self.partitioned[parsed.repo].contains(t))
        {
            return Err("ON ONLY on a partitioned table (builds nothing)");
        }
        if kind == "set not null (scan)" && proved_not_null(&w, parsed, stmt) {
            return Err("SET NOT NULL after a valid CHECK (no scan)");
        }
        if let Some(t) = &table
            && self.created_with(parsed, &f.file).contains(t)
        {
            return Err("table created in the same file");
        }
        Ok(Danger {
            file: f.file.clone(),
            line: stmt.line,
            kind,
            sql: stmt.sql.clone(),
        })
    }

    /// The tables a file creates, with its up's for a down file.
    fn created_with(&self, parsed: &Parsed, file: &str) -> BTreeSet<String> {
        let mut c = parsed.created.clone();
        if parsed.down_file
            && let Some(up) = self.files.get(&up_of(file))
        {
            c.extend(up.created.iter().cloned());
        }
        c
    }

    /// Class 4: keel's fixes that cannot run as printed, by reason (indexes
    /// into `found`), and how many findings carry a fix.
    fn fixes(&self, found: &[Found]) -> (usize, BTreeMap<&'static str, Vec<usize>>) {
        let mut bad: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        let mut n = 0;
        for (k, f) in found.iter().enumerate() {
            if f.suggestion.trim().is_empty() {
                continue;
            }
            n += 1;
            let Some(parsed) = self.files.get(&f.file) else {
                continue;
            };
            let stmt = parsed.at(f.line);
            let spans = code_spans(&f.suggestion);
            // In the SQL of the fix (between backticks; prose may elide), but
            // `-- keel:allow RULE reason="…"` is a template for the user's
            // own words, not SQL that fails.
            if spans.iter().any(|sp| {
                let sp = sp.replace("reason=\"…\"", "reason=\"R\"");
                sp.contains('…') || sp.contains("...")
            }) {
                bad.entry("placeholder (… or ...) in the fix's SQL")
                    .or_default()
                    .push(k);
            }
            if let Some(s) = stmt {
                let needs = quoted_names(&s.sql);
                if spans
                    .iter()
                    .any(|span| needs.iter().any(|n| unquoted_in(span, n)))
                {
                    bad.entry("drops the quotes of a case-sensitive name")
                        .or_default()
                        .push(k);
                }
                let w = words(&s.sql);
                let on = w
                    .iter()
                    .position(|x| x == "on")
                    .and_then(|i| w[i + 1..].iter().find(|x| *x != "only"))
                    .map(|n| bare(n));
                if w.first().is_some_and(|x| x == "create")
                    && w.iter().take(4).any(|x| x == "index")
                    && on
                        .as_ref()
                        .is_some_and(|t| self.partitioned[parsed.repo].contains(t))
                    && spans.iter().any(|sp| {
                        // CONCURRENTLY on the parent itself (not `ON ONLY`
                        // it, nor on a partition).
                        let v = words(sp);
                        has(&v, &["concurrently"])
                            && has(&v, &["index"])
                            && v.windows(2)
                                .any(|p| p[0] == "on" && Some(bare(&p[1])) == on)
                    })
                {
                    bad.entry("CONCURRENTLY on a partitioned table")
                        .or_default()
                        .push(k);
                }
            }
            let keel_only = [
                "migration.toml",
                "[backfill]",
                "keel new",
                "`transaction = false`",
                "keel backs",
            ];
            if keel_only.iter().any(|m| f.suggestion.contains(m)) {
                let why: &'static str = match parsed.tool {
                    Tool::Diesel => {
                        "keel-only machinery (migration.toml, [backfill], keel new, keel's backup), diesel folder"
                    }
                    _ => {
                        "keel-only machinery (migration.toml, [backfill], keel new, keel's backup), other tool"
                    }
                };
                bad.entry(why).or_default().push(k);
            }
        }
        (n, bad)
    }
}

/// The text between backticks.
fn code_spans(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// Quoted identifiers of a statement that only work quoted: upper case, or
/// characters other than lower-case letters, digits and `_`.
fn quoted_names(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = sql;
    while let Some(a) = rest.find('"') {
        let after = &rest[a + 1..];
        let Some(b) = after.find('"') else { break };
        let name = &after[..b];
        if !name.is_empty()
            && name
                .chars()
                .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            && !name.contains(char::is_whitespace)
        {
            out.insert(name.to_string());
        }
        rest = &after[b + 1..];
    }
    out
}

/// Whether `name` stands in `span` as a word without its double quotes.
fn unquoted_in(span: &str, name: &str) -> bool {
    let mut from = 0;
    while let Some(at) = span[from..].find(name) {
        let i = from + at;
        let before = span[..i].chars().next_back();
        let after = span[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if before != Some('"') && !word(before) && !word(after) {
            return true;
        }
        from = i + name.len();
    }
    false
}

/// Splits a file into statements (with DO bodies' statements), reads its
/// sections and how its tool runs it.
fn parse(repo: usize, tool: Tool, path: &Path, text: &str) -> Parsed {
    let mut stmts: Vec<Stmt> = Vec::new();
    for s in split(text) {
        let end = s.line + s.sql.matches('\n').count();
        let w = words(&s.sql);
        if w.first().is_some_and(|x| x == "do") {
            stmts.extend(do_body(&s.sql, s.line));
        }
        stmts.push(Stmt {
            line: s.line,
            end,
            sql: s.sql,
            in_do: false,
        });
    }
    let top = stmts.iter().filter(|s| !s.in_do).count();
    let mut down_lines = BTreeSet::new();
    if matches!(tool, Tool::Goose | Tool::Dbmate) {
        let mut down = false;
        for (i, l) in text.lines().enumerate() {
            let t = l.trim().to_lowercase();
            if t.starts_with("-- +goose up") || t.starts_with("-- migrate:up") {
                down = false;
            } else if t.starts_with("-- +goose down") || t.starts_with("-- migrate:down") {
                down = true;
            }
            if down {
                down_lines.insert(i + 1);
            }
        }
    }
    let mut created = BTreeSet::new();
    for s in &stmts {
        if let Some(t) = creates_table(&words(&s.sql))
            && !down_lines.contains(&s.line)
        {
            created.insert(t);
        }
    }
    Parsed {
        repo,
        tool,
        in_tx: tool.in_transaction(path, text, top),
        down_file: is_down(path),
        down_lines,
        created,
        stmts,
    }
}

/// `CREATE [UNLOGGED|TEMP] TABLE [IF NOT EXISTS] name`: the name.
fn creates_table(w: &[String]) -> Option<String> {
    if w.len() < 3 || w[0] != "create" {
        return None;
    }
    let at = w.iter().position(|x| x == "table" || x == "view")?;
    if w[at] == "view" && w[at - 1] != "materialized" {
        return None;
    }
    if !w[..at].iter().all(|x| {
        [
            "create",
            "unlogged",
            "temp",
            "temporary",
            "or",
            "replace",
            "materialized",
        ]
        .contains(&x.as_str())
    }) {
        return None;
    }
    w[at + 1..]
        .iter()
        .find(|x| !["if", "not", "exists"].contains(&x.as_str()))
        .map(|n| bare(n))
}

/// The statements a DO block's body runs: the SQL after each BEGIN, THEN,
/// ELSE, LOOP or `;` of the PL/pgSQL, and `EXECUTE 'literal'`s, each with
/// its lines in the file.
fn do_body(sql: &str, line: usize) -> Vec<Stmt> {
    let lower = sql.to_lowercase();
    // The body: between the first dollar quote and its twin.
    let Some(open) = lower.find('$') else {
        return Vec::new();
    };
    let Some(close_tag) = lower[open + 1..].find('$') else {
        return Vec::new();
    };
    let tag = &sql[open..open + close_tag + 2];
    let body_at = open + tag.len();
    let Some(body_len) = sql[body_at..].find(tag) else {
        return Vec::new();
    };
    let body = &sql[body_at..body_at + body_len];
    let mut out = Vec::new();
    let mut push = |at: usize, text: String| {
        let l = line + sql[..body_at + at].matches('\n').count();
        out.push(Stmt {
            line: l,
            end: l + text.matches('\n').count(),
            sql: text,
            in_do: true,
        });
    };
    let verbs = [
        "alter", "create", "drop", "update", "delete", "truncate", "insert", "vacuum", "cluster",
        "reindex",
    ];
    let starts = ["begin", "then", "else", "loop", ";", "$$"];
    let toks = tokens(body);
    let mut i = 0;
    while i < toks.len() {
        let (at, t) = &toks[i];
        let prev = if i == 0 {
            "begin"
        } else {
            toks[i - 1].1.as_str()
        };
        if t == "execute"
            && let Some((lit_at, lit)) = toks.get(i + 1).filter(|(_, x)| x.starts_with('\''))
            && toks.get(i + 2).is_none_or(|(_, x)| x != "||")
        {
            push(
                *lit_at,
                lit[1..lit.len().saturating_sub(1)].replace("''", "'"),
            );
            i += 2;
            continue;
        }
        if verbs.contains(&t.as_str()) && starts.contains(&prev) {
            // To the next top-level `;` of the body.
            let end = toks[i..]
                .iter()
                .find(|(_, x)| x == ";")
                .map_or(body.len(), |(e, _)| *e);
            push(*at, body[*at..end].trim_end().to_string());
        }
        i += 1;
    }
    out
}

/// Lower-case words, symbols and string literals (kept whole, quotes
/// included) of PL/pgSQL, with their byte offsets; comments dropped.
fn tokens(s: &str) -> Vec<(usize, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'\'' {
            let start = i;
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push((start, s[start..i].to_string()));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'"' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || b[i] == b'"'
                    || b[i] == b'.'
                    || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push((start, s[start..i].to_lowercase()));
        } else if c == b'|' && b.get(i + 1) == Some(&b'|') {
            out.push((i, "||".into()));
            i += 2;
        } else {
            if !c.is_ascii_whitespace() {
                out.push((i, (c as char).to_string()));
            }
            i += 1;
        }
    }
    out
}

/// The danger of a statement where it runs: the statement's own, or one
/// that only exists because of how the tool runs the file (CONCURRENTLY in
/// a transaction fails; a VALIDATE in the transaction that added the
/// constraint holds its lock for the scan).
fn danger_in(w: &[String], parsed: &Parsed, stmt: &Stmt) -> Option<(&'static str, Option<String>)> {
    if parsed.in_tx && !stmt.in_do && concurrently(w) {
        return Some(("CONCURRENTLY in a transaction (fails)", None));
    }
    if parsed.in_tx && validates_added(w, parsed, stmt).is_some() {
        return Some(("VALIDATE in the transaction that added it", None));
    }
    danger(w)
}

/// `ALTER … ALTER [COLUMN] c SET NOT NULL` where an earlier statement of
/// the file added `CHECK (c IS NOT NULL)` valid (not NOT VALID, or
/// validated since): PostgreSQL skips the scan.
fn proved_not_null(w: &[String], parsed: &Parsed, stmt: &Stmt) -> bool {
    let Some(at) = w.windows(3).position(|p| p == ["set", "not", "null"]) else {
        return false;
    };
    let Some(col) = w[..at]
        .iter()
        .rev()
        .find(|x| *x != "column")
        .map(|c| bare(c))
    else {
        return false;
    };
    let earlier: Vec<Vec<String>> = parsed
        .stmts
        .iter()
        .filter(|s| s.line < stmt.line)
        .map(|s| words(&s.sql))
        .collect();
    let validated = earlier.iter().any(|v| has(v, &["validate", "constraint"]));
    earlier.iter().any(|v| {
        v.windows(6).any(|p| {
            p[0] == "check"
                && p[1] == "("
                && bare(&p[2]) == col
                && p[3] == "is"
                && p[4] == "not"
                && p[5] == "null"
        }) && (!has(v, &["not", "valid"]) || validated)
    })
}

fn concurrently(w: &[String]) -> bool {
    w.first()
        .is_some_and(|x| ["create", "drop", "reindex", "refresh"].contains(&x.as_str()))
        && w.iter().take(6).any(|x| x == "concurrently")
}

/// `ALTER TABLE … VALIDATE CONSTRAINT c` where an earlier statement of the
/// same file added `c` NOT VALID: the constraint's name.
fn validates_added(w: &[String], parsed: &Parsed, stmt: &Stmt) -> Option<String> {
    let at = w.iter().position(|x| x == "validate")?;
    if w.get(at + 1).is_none_or(|x| x != "constraint") {
        return None;
    }
    let name = bare(w.get(at + 2)?);
    parsed
        .stmts
        .iter()
        .filter(|s| s.line < stmt.line && !s.in_do)
        .any(|s| {
            let v = words(&s.sql);
            has(&v, &["not", "valid"])
                && v.windows(2)
                    .any(|p| p[0] == "constraint" && bare(&p[1]) == name)
        })
        .then_some(name)
}

/// The cases a file holds on its own: classes 1, 2, 3, 5 (down sections)
/// and 6.
fn file_cases(key: &str, p: &Parsed, files: &HashMap<String, Parsed>, out: &mut Vec<Case>) {
    let case = |class, what, s: &Stmt, expect| Case {
        class,
        what,
        file: key.to_string(),
        line: s.line,
        end: s.end,
        sql: s.sql.clone(),
        expect,
    };
    let created = {
        let mut c = p.created.clone();
        if p.down_file
            && let Some(up) = files.get(&up_of(key))
        {
            c.extend(up.created.iter().cloned());
        }
        c
    };
    let mut added_bare: BTreeSet<(String, String)> = BTreeSet::new();
    // What the up section made, which its down section may drop again.
    let mut up_made: BTreeSet<String> = BTreeSet::new();
    for s in &p.stmts {
        let w = words(&s.sql);
        let down = p.is_down_at(s.line);
        if down {
            // A drop in a goose/dbmate Down section of what its Up made is
            // the undo, not a danger (as an up it would be flagged).
            let undoes = match danger(&w) {
                Some(("drop table", Some(t))) => created.contains(&t),
                Some(("blocking index drop", _)) => w[2..]
                    .iter()
                    .filter(|x| !["if", "exists", ","].contains(&x.as_str()))
                    .all(|n| up_made.contains(&format!("index {}", bare(n)))),
                Some(("drop column", Some(t))) => {
                    let cols: Vec<String> = w
                        .windows(2)
                        .filter(|p| p[0] == "column")
                        .map(|p| p[1].clone())
                        .filter(|c| !["if"].contains(&c.as_str()))
                        .collect();
                    !cols.is_empty()
                        && cols
                            .iter()
                            .all(|c| up_made.contains(&format!("column {t}.{}", bare(c))))
                }
                _ => false,
            };
            if !p.down_file && undoes {
                out.push(case(
                    5,
                    "goose/dbmate Down section: dropping what its Up made (undo)",
                    s,
                    Expect::NoFlag(&[
                        "drop-table",
                        "drop-column",
                        "drop-index-blocking",
                        "drop-dependency",
                    ]),
                ));
            }
            continue;
        }
        if w.first().is_some_and(|x| x == "create")
            && let Some(i) = w.iter().take(4).position(|x| x == "index")
            && let Some(n) = w[i + 1..]
                .iter()
                .find(|x| !["if", "not", "exists", "concurrently"].contains(&x.as_str()))
        {
            up_made.insert(format!("index {}", bare(n)));
        }
        if w.first().is_some_and(|x| x == "alter") {
            let t = w.get(2..).and_then(|r| {
                r.iter()
                    .find(|x| !["if", "exists", "only"].contains(&x.as_str()))
                    .map(|n| bare(n))
            });
            for p in w.windows(3) {
                if p[0] == "add" && p[1] == "column" && p[2] != "if" {
                    up_made.insert(format!(
                        "column {}.{}",
                        t.clone().unwrap_or_default(),
                        bare(&p[2])
                    ));
                }
            }
            for p in w.windows(6) {
                if p[0] == "add" && p[1] == "column" && p[2] == "if" {
                    up_made.insert(format!(
                        "column {}.{}",
                        t.clone().unwrap_or_default(),
                        bare(&p[5])
                    ));
                }
            }
        }
        if !s.in_do && concurrently(&w) {
            if p.in_tx {
                out.push(case(
                    1,
                    "CONCURRENTLY in a file its tool runs in a transaction",
                    s,
                    Expect::Flag(&["concurrently-in-transaction"]),
                ));
            } else {
                out.push(case(
                    1,
                    "CONCURRENTLY in a file run outside one (no finding)",
                    s,
                    Expect::NoFlag(&["concurrently-in-transaction"]),
                ));
            }
        }
        if p.in_tx && !s.in_do && validates_added(&w, p, s).is_some() {
            out.push(case(
                1,
                "VALIDATE of a NOT VALID added in the same transaction",
                s,
                Expect::Flag(&["validate-with-lock"]),
            ));
        }
        let table_is_new = |t: &Option<String>| t.as_ref().is_some_and(|t| created.contains(t));
        if s.in_do
            && let Some((_, t)) = danger(&w)
            && !table_is_new(&t)
        {
            out.push(case(2, "danger inside a DO block", s, Expect::Flag(&[])));
        }
        // Columns added without a value, for `WHERE col IS NULL`.
        if w.first().is_some_and(|x| x == "alter") && has(&w, &["add", "column"]) {
            let table = w.get(2..).and_then(|r| {
                r.iter()
                    .find(|x| !["if", "exists", "only"].contains(&x.as_str()))
                    .map(|n| bare(n))
            });
            for (i, x) in w.iter().enumerate() {
                if x == "column" && i > 0 && w[i - 1] == "add" {
                    let col = w[i + 1..]
                        .iter()
                        .find(|x| !["if", "not", "exists"].contains(&x.as_str()));
                    // The column's own definition: to the next `,` at depth 0.
                    let mut depth = 0i32;
                    let def: Vec<&String> = w[i + 1..]
                        .iter()
                        .take_while(|x| {
                            match x.as_str() {
                                "(" => depth += 1,
                                ")" => depth -= 1,
                                "," if depth == 0 => return false,
                                _ => {}
                            }
                            true
                        })
                        .collect();
                    let defaulted = def.windows(2).any(|p| p[0] == "default" && p[1] != "null");
                    if let (Some(t), Some(c)) = (&table, col)
                        && !defaulted
                        && !def.iter().any(|x| *x == "generated")
                    {
                        added_bare.insert((t.clone(), bare(c)));
                    }
                    if defaulted && def.iter().any(|x| *x == "references") && !table_is_new(&table)
                    {
                        out.push(case(
                            6,
                            "ADD COLUMN with a DEFAULT and REFERENCES (lock finding)",
                            s,
                            Expect::Flag(&[]),
                        ));
                    }
                }
            }
        }
        let first = w.first().map(String::as_str).unwrap_or_default();
        if (first == "update" || first == "delete")
            && let Some(at) = w.iter().position(|x| x == "where")
        {
            let table = if first == "update" {
                w.get(1)
                    .filter(|x| *x != "only")
                    .or(w.get(2))
                    .map(|n| bare(n))
            } else {
                w.iter()
                    .position(|x| x == "from")
                    .and_then(|i| w.get(i + 1))
                    .map(|n| bare(n))
            };
            let pred = &w[at + 1..];
            if let (Some(t), [c, is, null]) = (&table, pred)
                && is == "is"
                && null == "null"
                && added_bare.contains(&(t.clone(), bare(c)))
                && !table_is_new(&table)
            {
                out.push(case(
                    3,
                    "UPDATE/DELETE WHERE col IS NULL right after ADD COLUMN col",
                    s,
                    Expect::Flag(&[]),
                ));
            }
        }
        if first == "alter"
            && has(&w, &["drop", "not", "null"])
            && w.iter().enumerate().all(|(i, x)| {
                x != "drop" || w.get(i + 1).is_some_and(|n| n == "not" || n == "default")
            })
        {
            let t = w.get(2..).and_then(|r| {
                r.iter()
                    .find(|x| !["if", "exists", "only"].contains(&x.as_str()))
                    .map(|n| bare(n))
            });
            if !table_is_new(&t) {
                out.push(case(
                    6,
                    "DROP NOT NULL not called a drop-dependency",
                    s,
                    Expect::NoFlag(&["drop-dependency"]),
                ));
            }
        }
    }
}

/// What the files before this one made, in the tool's apply order: the
/// judge's own, for the no-op `IF NOT EXISTS` and widening cases (class 5)
/// and the partitioned tables (class 4).
#[derive(Default)]
struct History {
    tables: BTreeSet<String>,
    indexes: BTreeSet<String>,
    columns: BTreeSet<(String, String)>,
    /// varchar(N) columns.
    varchar: BTreeMap<(String, String), u32>,
}

impl History {
    fn file(
        &mut self,
        key: &str,
        p: &mut Parsed,
        cases: &mut Vec<Case>,
        partitioned: &mut BTreeSet<String>,
    ) {
        let case = |what, s: &Stmt, expect| Case {
            class: 5,
            what,
            file: key.to_string(),
            line: s.line,
            end: s.end,
            sql: s.sql.clone(),
            expect,
        };
        let mut new_here = BTreeSet::new();
        for s in &p.stmts {
            if p.is_down_at(s.line) {
                continue;
            }
            let w = words(&s.sql);
            let first = w.first().map(String::as_str).unwrap_or_default();
            if let Some(t) = creates_table(&w) {
                if has(&w, &["if", "not", "exists"])
                    && self.tables.contains(&t)
                    && !new_here.contains(&t)
                {
                    // Not new: a no-op on the table an earlier file made.
                    p.created.remove(&t);
                } else {
                    new_here.insert(t.clone());
                }
                self.tables.insert(t.clone());
                if has(&w, &["partition", "by"]) {
                    partitioned.insert(t.clone());
                }
                // Column definitions: `name type …` after `(` or `,` at depth 1.
                let mut depth = 0;
                for (i, x) in w.iter().enumerate() {
                    match x.as_str() {
                        "(" => depth += 1,
                        ")" => depth -= 1,
                        _ => {}
                    }
                    if depth == 1
                        && (x == "(" || x == ",")
                        && let Some(col) = w.get(i + 1)
                    {
                        self.column(&t, col, &w[i + 2..]);
                    }
                }
                continue;
            }
            if first == "create" && w.iter().take(4).any(|x| x == "index") {
                let name = w
                    .iter()
                    .position(|x| x == "index")
                    .and_then(|i| {
                        w[i + 1..].iter().find(|x| {
                            !["if", "not", "exists", "concurrently"].contains(&x.as_str())
                        })
                    })
                    .filter(|n| *n != "on")
                    .map(|n| bare(n));
                if let Some(n) = name {
                    let on = w
                        .iter()
                        .position(|x| x == "on")
                        .and_then(|i| w[i + 1..].iter().find(|x| *x != "only"))
                        .map(|n| bare(n));
                    if has(&w, &["if", "not", "exists"])
                        && self.indexes.contains(&n)
                        && !on.is_some_and(|t| new_here.contains(&t))
                    {
                        cases.push(case(
                            "no-op CREATE INDEX IF NOT EXISTS (earlier file made it)",
                            s,
                            Expect::NoFlag(&[]),
                        ));
                    }
                    self.indexes.insert(n);
                }
                continue;
            }
            if first == "drop" {
                let kind = w.get(1).map(String::as_str).unwrap_or_default();
                for n in w.get(2..).unwrap_or_default().iter().filter(|x| {
                    !["if", "exists", "concurrently", ",", "cascade", "restrict"]
                        .contains(&x.as_str())
                }) {
                    match kind {
                        "index" => self.indexes.remove(&bare(n)),
                        "table" => self.tables.remove(&bare(n)),
                        _ => false,
                    };
                }
                continue;
            }
            if first != "alter" || w.get(1).is_none_or(|x| x != "table") {
                continue;
            }
            let Some(t) = w[2..]
                .iter()
                .find(|x| !["if", "exists", "only"].contains(&x.as_str()))
                .map(|n| bare(n))
            else {
                continue;
            };
            if let Some(r) = w.iter().position(|x| x == "rename") {
                let to = w.iter().position(|x| x == "to").and_then(|i| w.get(i + 1));
                let Some(to) = to.map(|n| bare(n)) else {
                    continue;
                };
                match w.get(r + 1).map(String::as_str) {
                    Some("to") => {
                        // The table: its columns go with it.
                        self.tables.insert(to.clone());
                        let moved: Vec<_> = self
                            .columns
                            .iter()
                            .filter(|(x, _)| *x == t)
                            .cloned()
                            .collect();
                        for (_, c) in moved {
                            self.columns.remove(&(t.clone(), c.clone()));
                            self.columns.insert((to.clone(), c.clone()));
                            if let Some(n) = self.varchar.remove(&(t.clone(), c.clone())) {
                                self.varchar.insert((to.clone(), c), n);
                            }
                        }
                    }
                    Some("constraint") | None => {}
                    Some(c) => {
                        let from = if c == "column" {
                            w.get(r + 2).map(|n| bare(n)).unwrap_or_default()
                        } else {
                            bare(c)
                        };
                        if self.columns.remove(&(t.clone(), from.clone())) {
                            self.columns.insert((t.clone(), to.clone()));
                        }
                        if let Some(n) = self.varchar.remove(&(t.clone(), from)) {
                            self.varchar.insert((t.clone(), to), n);
                        }
                    }
                }
                continue;
            }
            for (i, x) in w.iter().enumerate() {
                let next = w.get(i + 1).map(String::as_str).unwrap_or_default();
                if x == "add" && next == "column" {
                    let rest = &w[i + 2..];
                    let ine = rest.len() > 3
                        && rest[0] == "if"
                        && rest[1] == "not"
                        && rest[2] == "exists";
                    let col = if ine { rest.get(3) } else { rest.first() };
                    if let Some(c) = col {
                        let c = bare(c);
                        if ine
                            && self.columns.contains(&(t.clone(), c.clone()))
                            && !new_here.contains(&t)
                        {
                            cases.push(case(
                                "no-op ADD COLUMN IF NOT EXISTS (earlier file made it)",
                                s,
                                Expect::NoFlag(&[]),
                            ));
                        }
                        let def = if ine { &rest[4..] } else { &rest[1..] };
                        self.column(&t, &c, def);
                    }
                }
                if x == "drop"
                    && next == "column"
                    && let Some(c) = w[i + 2..]
                        .iter()
                        .find(|x| !["if", "exists"].contains(&x.as_str()))
                {
                    self.columns.remove(&(t.clone(), bare(c)));
                    self.varchar.remove(&(t.clone(), bare(c)));
                }
                if x == "type" && i >= 2 && (w[i - 1] != "set" || w[i - 2] == "data") {
                    // ALTER [COLUMN] c [SET DATA] TYPE …: c follows the
                    // last ALTER before it.
                    let c = w[..i]
                        .iter()
                        .rposition(|x| x == "alter")
                        .and_then(|a| w[a + 1..i].iter().find(|x| *x != "column"));
                    if let Some(c) = c {
                        let key = (t.clone(), bare(c));
                        let new_len = varchar_len(&w[i + 1..]);
                        let old = self.varchar.get(&key).copied();
                        if let (Some(old), Some(new)) = (old, new_len)
                            && new >= old
                            && !new_here.contains(&t)
                        {
                            cases.push(case(
                                "varchar widening, old length from the history (no rewrite)",
                                s,
                                Expect::NoFlag(&["change-column-type", "table-rewrite"]),
                            ));
                        }
                        match new_len {
                            Some(n) => self.varchar.insert(key, n),
                            None => self.varchar.remove(&key),
                        };
                    }
                }
            }
        }
    }

    fn column(&mut self, table: &str, col: &str, def: &[String]) {
        if [
            "constraint",
            "primary",
            "unique",
            "foreign",
            "check",
            "exclude",
            "like",
        ]
        .contains(&col)
        {
            return;
        }
        let key = (table.to_string(), bare(col));
        self.columns.insert(key.clone());
        match varchar_len(def) {
            Some(n) => self.varchar.insert(key, n),
            None => self.varchar.remove(&key),
        };
    }
}

/// `varchar(N)` / `character varying(N)` at the start of a type: N.
fn varchar_len(w: &[String]) -> Option<u32> {
    let rest = match w {
        [v, rest @ ..] if v == "varchar" => rest,
        [c, v, rest @ ..] if c == "character" && v == "varying" => rest,
        _ => return None,
    };
    match rest {
        [open, n, close, ..] if open == "(" && close == ")" => n.parse().ok(),
        _ => None,
    }
}

fn up_of(down: &str) -> String {
    for (d, u) in [
        ("/down.sql", "/up.sql"),
        (".down.sql", ".up.sql"),
        ("_down.sql", "_up.sql"),
        ("-down.sql", "-up.sql"),
    ] {
        if let Some(stem) = down.strip_suffix(d) {
            return format!("{stem}{u}");
        }
    }
    down.to_string()
}

/// Lower-case words and symbols of a statement, comments and string
/// contents dropped (a crude tokenizer is enough for a judge).
fn words(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
                out.push("'str'".into());
            }
            c if c.is_alphanumeric() || c == '_' || c == '"' || c == '.' || c == '$' => {
                cur.push(c.to_ascii_lowercase())
            }
            c => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                if !c.is_whitespace() {
                    out.push(c.to_string());
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A name without quotes and schema.
fn bare(name: &str) -> String {
    name.rsplit('.')
        .next()
        .unwrap_or(name)
        .trim_matches('"')
        .to_string()
}

fn has(w: &[String], seq: &[&str]) -> bool {
    w.windows(seq.len())
        .any(|win| win.iter().zip(seq).all(|(a, b)| a == b))
}

/// The danger a statement carries, and the table it is on, or None.
fn danger(w: &[String]) -> Option<(&'static str, Option<String>)> {
    let first = w.first().map(String::as_str).unwrap_or_default();
    let after = |kw: &str| -> Option<String> {
        let at = w.iter().position(|x| x == kw)?;
        w[at + 1..]
            .iter()
            .find(|x| !["if", "exists", "not", "only", "concurrently"].contains(&x.as_str()))
            .map(|n| bare(n))
    };
    match first {
        "drop" if w.get(1).is_some_and(|x| x == "table") => {
            return Some(("drop table", after("table")));
        }
        "drop" if w.get(1).is_some_and(|x| x == "index") && !has(w, &["concurrently"]) => {
            return Some(("blocking index drop", None));
        }
        "truncate" => return Some(("truncate", after("truncate"))),
        "update" | "delete" if !has(w, &["where"]) => {
            let table = if first == "update" {
                w.get(1).map(|n| bare(n))
            } else {
                after("from")
            };
            return Some(("UPDATE/DELETE of every row", table));
        }
        "create" if w.iter().take(4).any(|x| x == "index") && !has(w, &["concurrently"]) => {
            return Some(("blocking index build", after("on")));
        }
        "alter" if w.get(1).is_some_and(|x| x == "table") => {}
        "vacuum" if has(w, &["full"]) => return Some(("table rewrite", None)),
        "cluster" => return Some(("table rewrite", None)),
        _ => return None,
    }
    let table = after("table");
    let next = |i: usize| w.get(i + 1).map(String::as_str).unwrap_or_default();
    let not_column = ["constraint", "default", "not", "identity", "expression"];
    let drops_column = w
        .iter()
        .enumerate()
        .any(|(i, x)| x == "drop" && !not_column.contains(&next(i)));
    let renames = w.iter().position(|x| x == "rename");
    let type_change = w.iter().enumerate().find_map(|(i, x)| {
        (x == "type" && i >= 2 && (w[i - 1] != "set" || w[i - 2] == "data"))
            .then(|| w[i + 1..].join(" "))
    });
    let adds_column = has(w, &["add", "column"]);
    let kind = if drops_column {
        "drop column"
    } else if let Some(at) = renames {
        match next(at) {
            "to" => "rename table",
            "constraint" => return None,
            _ => "rename column",
        }
    } else if let Some(to) = type_change {
        // Binary-coercible targets (from varchar) and timestamptz under UTC
        // do not rewrite; anything else may.
        if to.starts_with("text")
            || to.starts_with("timestamptz")
            || to.starts_with("timestamp with time zone")
            || to.starts_with("character varying using")
            || to == "varchar"
            || to == "character varying"
        {
            return None;
        }
        "column type change (rewrite)"
    } else if has(w, &["set", "not", "null"]) {
        "set not null (scan)"
    } else if adds_column && has(w, &["not", "null"]) && !has(w, &["default"]) {
        if has(w, &["generated"]) || has(w, &["serial"]) || has(w, &["bigserial"]) {
            "add column rewrite"
        } else {
            "NOT NULL column without default"
        }
    } else if adds_column
        && ([
            "serial",
            "bigserial",
            "smallserial",
            "stored",
            "gen_random_uuid",
            "random",
        ]
        .iter()
        .any(|t| has(w, &[t]))
            || has(w, &["clock_timestamp"])
            || has(w, &["uuid_generate_v4"]))
    {
        "add column rewrite"
    } else if adds_column {
        return None;
    } else if has(w, &["foreign", "key"]) && !has(w, &["not", "valid"]) {
        "foreign key without NOT VALID"
    } else if has(w, &["add"]) && has(w, &["check"]) && !has(w, &["not", "valid"]) {
        "check without NOT VALID"
    } else if has(w, &["add"])
        && (has(w, &["unique"]) || has(w, &["primary", "key"]))
        && !has(w, &["using", "index"])
    {
        "unique / primary key build"
    } else if has(w, &["set", "logged"])
        || has(w, &["set", "unlogged"])
        || has(w, &["set", "tablespace"])
    {
        "table rewrite"
    } else {
        return None;
    };
    Some((kind, table))
}

/// Why a finding on a statement that is no real danger is noise.
fn style_or_safe(w: &[String], rule: &str) -> &'static str {
    if rule.starts_with("prefer") || rule.starts_with("ban-char") || rule == "prefer-robust-stmts" {
        return "style (prefer-*)";
    }
    if w.first().is_some_and(|x| x == "alter") && has(w, &["index"]) && has(w, &["rename"]) {
        return "index rename";
    }
    if has(w, &["timestamptz"]) || has(w, &["with", "time", "zone"]) {
        return "timestamp <-> timestamptz";
    }
    "other (no danger found in the statement)"
}
