//! keel lint against squawk on a corpus of real migration files.
//!
//! ```text
//! KEEL_LINT_CORPUS=/work/lint-corpus cargo bench --bench lint
//! cargo bench --bench lint -- /path/to/corpus [--runs 7] [--squawk /path/to/squawk]
//! ```
//!
//! The corpus is not part of the repository (the files keep their projects'
//! licenses): `bench/lint-corpus.txt` lists each file's repository, path,
//! commit and sha256, and the bench checks the files it finds against it.
//! Without a corpus the bench says so and exits 0.
//!
//! Both tools get the same files in one run each — squawk with
//! `--pg-version=15 --assume-in-transaction`, keel with `--pg-version 15`
//! (the release build cargo made for this bench) — both writing JSON to a
//! file. It prints the median wall time and max RSS over the runs, the
//! findings by rule, and sorts every finding into a real danger or noise
//! by reading the statement it points at (a judge of its own, sharing no
//! code with keel's classifier beyond the statement splitter). Recall is
//! measured against the union of real dangers either tool found.

use keel::sql::split;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut corpus = std::env::var_os("KEEL_LINT_CORPUS").map(PathBuf::from);
    let mut runs = 7usize;
    let mut squawk = std::env::var("SQUAWK").unwrap_or_else(|_| "squawk".into());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            "--squawk" => squawk = args.next().unwrap_or(squawk),
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
    check_manifest(&corpus, &files);
    let squawk = resolve(&squawk);
    let keel = PathBuf::from(env!("CARGO_BIN_EXE_keel"));
    let version = Command::new(&squawk).arg("--version").output();
    let Ok(version) = version else {
        println!(
            "lint bench: squawk not found ({}); install it (`pip install squawk-cli`) or set SQUAWK",
            squawk.display()
        );
        return;
    };
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(corpus.join(f)).map_or(0, |m| m.len()))
        .sum();
    let downs = files.iter().filter(|f| is_down(f)).count();
    println!(
        "corpus: {} ({} files, {} down files, {:.1} MB); {}; keel {}",
        corpus.display(),
        files.len(),
        downs,
        bytes as f64 / 1e6,
        String::from_utf8_lossy(&version.stdout).trim(),
        keel.display()
    );

    let out_dir = std::env::temp_dir().join(format!("keel-lint-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let squawk_out = out_dir.join("squawk.json");
    let keel_out = out_dir.join("keel.json");
    let mut squawk_cmd = Command::new(&squawk);
    squawk_cmd
        .args([
            "--pg-version=15",
            "--assume-in-transaction",
            "--reporter=json",
        ])
        .args(&files);
    let mut keel_cmd = Command::new(&keel);
    keel_cmd
        .args(["--format", "json", "lint", "--pg-version", "15"])
        .args(&files);

    let mut squawk_runs = Vec::new();
    let mut keel_runs = Vec::new();
    for _ in 0..runs.max(1) {
        squawk_runs.push(measure(&mut squawk_cmd, &corpus, &squawk_out));
        keel_runs.push(measure(&mut keel_cmd, &corpus, &keel_out));
    }
    let (st, sm) = median(&squawk_runs);
    let (kt, km) = median(&keel_runs);
    println!(
        "\n{:<8} {:>10} {:>10}   (median of {} runs)",
        "", "wall", "max RSS", runs
    );
    println!(
        "{:<8} {:>8.1}ms {:>8.1}MB",
        "squawk",
        ms(st),
        sm as f64 / 1024.0
    );
    println!(
        "{:<8} {:>8.1}ms {:>8.1}MB",
        "keel",
        ms(kt),
        km as f64 / 1024.0
    );
    println!(
        "keel/squawk: time {:.2}x, memory {:.2}x",
        ms(kt) / ms(st),
        km as f64 / sm as f64
    );

    let squawk_findings = read_squawk(&squawk_out);
    let keel_findings = read_keel(&keel_out);
    let _ = std::fs::remove_dir_all(&out_dir);

    let mut judge = Judge::new(&corpus);
    let s = judge.sort(&squawk_findings);
    let k = judge.sort(&keel_findings);
    by_rule("squawk", &squawk_findings);
    by_rule("keel", &keel_findings);

    let union: BTreeSet<&Danger> = s.dangers.keys().chain(k.dangers.keys()).collect();
    println!("\nfindings by class (a statement flagged twice by one tool counts once as a danger)");
    println!("{:<34} {:>8} {:>8}", "", "squawk", "keel");
    println!(
        "{:<34} {:>8} {:>8}",
        "all findings",
        squawk_findings.len(),
        keel_findings.len()
    );
    println!(
        "{:<34} {:>8} {:>8}",
        "real dangers (statements)",
        s.dangers.len(),
        k.dangers.len()
    );
    println!(
        "{:<34} {:>8} {:>8}",
        "  findings on them", s.danger_findings, k.danger_findings
    );
    let reasons: BTreeSet<&str> = s.noise.keys().chain(k.noise.keys()).copied().collect();
    let total = |m: &BTreeMap<&str, usize>| m.values().sum::<usize>();
    println!(
        "{:<34} {:>8} {:>8}",
        "noise (findings)",
        total(&s.noise),
        total(&k.noise)
    );
    for r in reasons {
        println!(
            "{:<34} {:>8} {:>8}",
            format!("  {r}"),
            s.noise.get(r).copied().unwrap_or(0),
            k.noise.get(r).copied().unwrap_or(0)
        );
    }
    let recall = |d: &HashMap<Danger, usize>| {
        if union.is_empty() {
            1.0
        } else {
            d.len() as f64 / union.len() as f64
        }
    };
    println!(
        "{:<34} {:>7.0}% {:>7.0}%",
        format!("recall on the {} dangers", union.len()),
        100.0 * recall(&s.dangers),
        100.0 * recall(&k.dangers)
    );
    let mut kinds: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for d in &union {
        let e = kinds.entry(d.kind).or_default();
        e.0 += 1;
        e.1 += usize::from(s.dangers.contains_key(*d));
        e.2 += usize::from(k.dangers.contains_key(*d));
    }
    println!("\ndangers by kind                       all   squawk     keel");
    for (kind, (all, sq, ke)) in &kinds {
        println!("  {kind:<34} {all:>5} {sq:>8} {ke:>8}");
    }
    let missed: Vec<&&Danger> = union
        .iter()
        .filter(|d| !k.dangers.contains_key(**d))
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
    if std::env::var_os("LINT_BENCH_VERBOSE").is_some() {
        println!("\nkeel noise:");
        for (f, why) in &k.noise_list {
            println!("  {}:{} {} [{}]", f.file, f.line, f.rule, why);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn first_line(sql: &str) -> String {
    let l = sql.lines().next().unwrap_or_default();
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

/// Compares the corpus with bench/lint-corpus.txt (owner__name/path → sha256).
fn check_manifest(root: &Path, files: &[PathBuf]) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/lint-corpus.txt");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return;
    };
    let mut want: HashMap<String, String> = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        if let [repo, path, _commit, sha] = cols[..] {
            want.insert(
                format!("{}/{}", repo.replace('/', "__"), path),
                sha.to_string(),
            );
        }
    }
    let (mut ok, mut changed, mut extra) = (0, 0, 0);
    for f in files {
        let key = f.to_string_lossy().to_string();
        match want.get(&key) {
            Some(sha) => {
                let bytes = std::fs::read(root.join(f)).unwrap_or_default();
                if hex::encode(Sha256::digest(&bytes)) == *sha {
                    ok += 1;
                } else {
                    changed += 1;
                }
            }
            None => extra += 1,
        }
    }
    let missing = want.len().saturating_sub(ok + changed);
    println!(
        "manifest: {ok} files match bench/lint-corpus.txt, {changed} differ, {missing} missing, {extra} not listed"
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
        })
        .collect()
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

/// One file, split into statements, with the tables it creates.
struct Parsed {
    stmts: Vec<(usize, usize, String)>,
    created: BTreeSet<String>,
}

/// Reads the statement a finding points at and decides, on its own rules,
/// whether it is a real danger to a running application.
struct Judge<'a> {
    root: &'a Path,
    files: HashMap<String, Parsed>,
}

impl<'a> Judge<'a> {
    fn new(root: &'a Path) -> Self {
        Judge {
            root,
            files: HashMap::new(),
        }
    }

    fn parsed(&mut self, file: &str) -> &Parsed {
        if !self.files.contains_key(file) {
            let text = std::fs::read_to_string(self.root.join(file)).unwrap_or_default();
            let stmts: Vec<(usize, usize, String)> = split(&text)
                .into_iter()
                .map(|s| (s.line, s.line + s.sql.matches('\n').count(), s.sql))
                .collect();
            let mut created = BTreeSet::new();
            for (_, _, sql) in &stmts {
                let w = words(sql);
                if w.len() > 2 && w[0] == "create" {
                    let at = w.iter().position(|x| x == "table");
                    if let Some(at) = at
                        && w[..at].iter().all(|x| {
                            ["create", "unlogged", "temp", "temporary", "or", "replace"]
                                .contains(&x.as_str())
                        })
                    {
                        let name = w[at + 1..]
                            .iter()
                            .find(|x| !["if", "not", "exists"].contains(&x.as_str()));
                        if let Some(n) = name {
                            created.insert(bare(n));
                        }
                    }
                }
            }
            self.files
                .insert(file.to_string(), Parsed { stmts, created });
        }
        &self.files[file]
    }

    fn sort(&mut self, findings: &[Found]) -> Sorted {
        let mut out = Sorted::default();
        for f in findings {
            let verdict = self.judge(f);
            match verdict {
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

    fn judge(&mut self, f: &Found) -> Result<Danger, &'static str> {
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
        let down = is_down(Path::new(&f.file));
        // The down's context: what its up created.
        let up_created: BTreeSet<String> = if down {
            let up = up_of(&f.file);
            if self.root.join(&up).is_file() {
                self.parsed(&up).created.clone()
            } else {
                BTreeSet::new()
            }
        } else {
            BTreeSet::new()
        };
        let parsed = self.parsed(&f.file);
        let Some((line, _, sql)) = parsed
            .stmts
            .iter()
            .find(|(a, b, _)| *a <= f.line && f.line <= *b)
            .cloned()
        else {
            return Err("not at a statement");
        };
        if down {
            return Err("in a down file");
        }
        let w = words(&sql);
        let kind = danger(&w);
        let Some((kind, table)) = kind else {
            return Err(style_or_safe(&w, &f.rule));
        };
        if let Some(t) = &table
            && (parsed.created.contains(t) || up_created.contains(t))
        {
            return Err("table created in the same file");
        }
        Ok(Danger {
            file: f.file.clone(),
            line,
            kind,
            sql,
        })
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
