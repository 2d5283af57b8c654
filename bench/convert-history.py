#!/usr/bin/env python3
"""Convert a public project's SQL migration history into keel's layout.

Reads the up/down pairs stored in a git directory at a given commit (no
checkout; only `git ls-tree` / `git cat-file`) and writes

    <out>/migrations/<version>_<name>/up.sql
                                     /down.sql        (present and non-empty)
                                     /migration.toml  (transaction = false)
    <out>/manifest.tsv     repository, path, commit, sha256 of every source file
    <out>/conversion.tsv   source -> keel folder, down status, transaction flag
    <out>/all.sql          every up file in order, for `psql -1 -f` (the
                           roundtrip bench's floor): one transaction, so
                           CONCURRENTLY is dropped from the files that run
                           without one, and each file ends with `;` (a last
                           statement may lack it before trailing comments)

Source layouts understood (auto-detected):
  flat   golang-migrate / sqlx:  <path>/<n>_<name>.up.sql + <n>_<name>.down.sql
  dirs   diesel:                 <path>/<version>_<name>/up.sql + down.sql
                                 (+ metadata.toml run_in_transaction = false)

<version> is 20200101000000 + n seconds as a UTC timestamp YYYYMMDDHHMMSS,
where n is the source's own sequence number (flat layout, when small) or
the 1-based position in the source's order (diesel, or --seq ordinal).

Usage:
  bench/convert-history.py --git-dir DIR --commit SHA --path migrations --out /tmp/corpus/NAME
             [--repo owner/name] [--seq auto|source|ordinal] [--pg-major 15]
             [--dialect postgres]   (flat layout: only files of this dialect
                                     when names carry one, e.g. x.postgres.up.sql)
Python 3 standard library only.
"""
import argparse
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys

BASE = datetime.datetime(2020, 1, 1, 0, 0, 0)


def git(gitdir, *args, data=None):
    return subprocess.run(["git", "--git-dir", gitdir, *args], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def list_tree(gitdir, commit, path):
    """[(path, blob sha)] of every file under path at commit."""
    out = git(gitdir, "ls-tree", "-r", "-z", commit, "--", path.rstrip("/") + "/")
    files = []
    for rec in out.split(b"\0"):
        if not rec:
            continue
        meta, p = rec.split(b"\t", 1)
        mode, kind, sha = meta.split()
        if kind == b"blob":
            files.append((p.decode("utf-8"), sha.decode()))
    return files


def read_blobs(gitdir, shas):
    """Contents of the blobs, by one `git cat-file --batch`."""
    if not shas:
        return {}
    uniq = sorted(set(shas))
    out = git(gitdir, "cat-file", "--batch", data=("\n".join(uniq) + "\n").encode())
    blobs, i = {}, 0
    for sha in uniq:
        nl = out.index(b"\n", i)
        header = out[i:nl].split()
        size = int(header[2])
        blobs[sha] = out[nl + 1:nl + 1 + size]
        i = nl + 1 + size + 1
    return blobs


def snake(name):
    s = re.sub(r"[^a-z0-9]+", "_", name.lower())
    s = re.sub(r"_+", "_", s).strip("_")
    if not s:
        s = "unnamed"
    if not s[0].isalpha():
        s = "m_" + s
    return s


def version_for(n):
    return (BASE + datetime.timedelta(seconds=n)).strftime("%Y%m%d%H%M%S")


def code_only(sql):
    """The SQL with comments, string literals, dollar-quoted bodies and
    quoted identifiers blanked out, so that keyword searches see only code."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        if sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(" ")
            i = j
            continue
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(" '' ")
            i = j + 1
            continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if m and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                out.append(" $$ ")
                i = n if j < 0 else j + len(tag)
                continue
        out.append(c)
        i += 1
    return "".join(out)


NON_TX = [
    (r"\bcreate\s+(unique\s+)?index\s+concurrently\b", "CREATE INDEX CONCURRENTLY"),
    (r"\bdrop\s+index\s+concurrently\b", "DROP INDEX CONCURRENTLY"),
    (r"\breindex\b[^;]*\bconcurrently\b", "REINDEX CONCURRENTLY"),
    (r"\bdetach\s+partition\b[^;]*\bconcurrently\b", "DETACH PARTITION CONCURRENTLY"),
    (r"(^|;)\s*vacuum\b", "VACUUM"),
    (r"\b(create|drop)\s+database\b", "CREATE/DROP DATABASE"),
    (r"\b(create|drop)\s+tablespace\b", "CREATE/DROP TABLESPACE"),
    (r"\balter\s+system\b", "ALTER SYSTEM"),
]
ADD_VALUE = r"\balter\s+type\b[^;]*\badd\s+value\b"


def non_tx_reasons(sql, pg_major):
    code = code_only(sql).lower()
    found = [label for rx, label in NON_TX if re.search(rx, code)]
    if pg_major < 12 and re.search(ADD_VALUE, code):
        found.append("ALTER TYPE ... ADD VALUE (PG < 12)")
    return found


def blank(sql):
    """True when the file holds no SQL at all (whitespace and comments only)."""
    return not code_only(sql).replace(";", "").strip()


def collect(files, path, dialect):
    """[(sort key, source number or None, raw name, {up,down,meta: path})]"""
    root = path.rstrip("/") + "/"
    entries = {}
    rel = [(p[len(root):], p) for p, _ in files if p.startswith(root)]
    dirs = any("/" in r and r.split("/", 1)[1] in ("up.sql", "down.sql") for r, _ in rel)
    if dirs:
        for r, p in rel:
            if "/" not in r:
                continue
            folder, leaf = r.split("/", 1)
            kind = {"up.sql": "up", "down.sql": "down", "metadata.toml": "meta"}.get(leaf)
            if kind is None or "_" not in folder:
                continue
            ver, name = folder.split("_", 1)
            key = (ver.replace("-", ""), name)
            entries.setdefault(key, [key, None, name, {}])[3][kind] = p
        layout = "dirs"
    else:
        rx = re.compile(r"^(\d+)_(.+?)(?:\.(postgres|postgresql|pg|mysql|sqlite3?|cockroach))?\.(up|down)\.sql$")
        for r, p in rel:
            m = rx.match(r)
            if not m or "/" in r:
                continue
            num, name, dia, kind = m.groups()
            if dia and dialect and not dia.startswith(dialect[:2]):
                continue
            key = (num.zfill(30), name)
            e = entries.setdefault(key, [key, int(num), name, {}])
            if kind in e[3]:
                sys.exit(f"two {kind} files for {num}_{name}: {e[3][kind]} and {p}")
            e[3][kind] = p
        layout = "flat"
    return layout, [entries[k] for k in sorted(entries)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--git-dir", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--path", required=True, help="folder of the migrations inside the repository")
    ap.add_argument("--out", required=True, help="project folder, e.g. /tmp/corpus/crates-io")
    ap.add_argument("--repo", help="owner/name for the manifest (default: from the git dir's path)")
    ap.add_argument("--seq", choices=["auto", "source", "ordinal"], default="auto")
    ap.add_argument("--pg-major", type=int, default=15)
    ap.add_argument("--dialect", default="postgres")
    a = ap.parse_args()

    out = os.path.realpath(a.out)
    # Another project's files never go into keel's repository (licenses):
    # only the manifest does.
    repo_root = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
    if out == repo_root or out.startswith(repo_root + "/"):
        sys.exit(f"refusing to write inside keel's repository ({repo_root})")
    commit = git(a.git_dir, "rev-parse", "--verify", a.commit + "^{commit}").decode().strip()
    repo = a.repo
    if not repo:
        m = re.search(r"/([^/+]+)\+([^/]+)/", os.path.realpath(a.git_dir) + "/")
        repo = f"{m.group(1)}/{m.group(2)}" if m else os.path.realpath(a.git_dir)

    files = list_tree(a.git_dir, commit, a.path)
    layout, entries = collect(files, a.path, a.dialect)
    if not entries:
        sys.exit(f"no up/down migrations under {a.path} at {commit}")
    sha_of = dict(files)
    blobs = read_blobs(a.git_dir, [sha_of[p] for e in entries for p in e[3].values()])

    seq = a.seq
    if seq == "auto":
        nums = [e[1] for e in entries]
        seq = "source" if layout == "flat" and all(n is not None and n < 10**7 for n in nums) else "ordinal"

    mig_dir = os.path.join(out, "migrations")
    if os.path.isdir(mig_dir):
        shutil.rmtree(mig_dir)
    os.makedirs(mig_dir)

    manifest = ["repository\tpath\tcommit\tsha256"]
    conv = ["keel_folder\tsource_up\tsource_down\tdown\ttransaction\treason"]
    seen_versions = set()
    all_sql = []
    stats = {"migrations": 0, "with_down": 0, "down_absent": 0, "down_blank": 0, "no_up": 0, "non_tx": 0}
    for pos, (key, num, raw, paths) in enumerate(entries, start=1):
        for p in sorted(paths.values()):
            manifest.append(f"{repo}\t{p}\t{commit}\t{hashlib.sha256(blobs[sha_of[p]]).hexdigest()}")
        if "up" not in paths:
            stats["no_up"] += 1
            print(f"skipped (no up file): {paths}", file=sys.stderr)
            continue
        n = num if seq == "source" else pos
        version = version_for(n)
        if version in seen_versions:
            sys.exit(f"version {version} twice (sequence number {n}); try --seq ordinal")
        seen_versions.add(version)
        folder = f"{version}_{snake(raw)}"
        d = os.path.join(mig_dir, folder)
        os.makedirs(d)
        up = blobs[sha_of[paths["up"]]]
        with open(os.path.join(d, "up.sql"), "wb") as f:
            f.write(up)
        stats["migrations"] += 1
        down_state = "absent"
        texts = [up.decode("utf-8", "replace")]
        if "down" in paths:
            down = blobs[sha_of[paths["down"]]]
            if blank(down.decode("utf-8", "replace")):
                down_state = "blank"
            else:
                down_state = "written"
                texts.append(down.decode("utf-8", "replace"))
                with open(os.path.join(d, "down.sql"), "wb") as f:
                    f.write(down)
        stats["with_down" if down_state == "written" else "down_" + down_state] += 1
        reasons = []
        if "meta" in paths:
            meta = blobs[sha_of[paths["meta"]]].decode("utf-8", "replace")
            if re.search(r"(?m)^\s*run_in_transaction\s*=\s*false\b", meta):
                reasons.append("source metadata.toml run_in_transaction = false")
        for which, t in zip(("up", "down"), texts):
            reasons += [f"{which}: {r}" for r in non_tx_reasons(t, a.pg_major)]
        if reasons:
            stats["non_tx"] += 1
            with open(os.path.join(d, "migration.toml"), "w") as f:
                f.write("# converted from " + repo + "@" + commit[:12] + ": " + "; ".join(reasons) + "\n")
                f.write("transaction = false\n")
        up_text = up.decode("utf-8", "replace")
        if reasons:
            up_text = re.sub(r"(?i)\bconcurrently\s+", "", up_text)
        all_sql.append(f"-- {folder}\n{up_text.rstrip()}\n;\n")
        conv.append("\t".join([folder, paths["up"], paths.get("down", ""), down_state,
                               "false" if reasons else "true", "; ".join(reasons)]))

    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    with open(os.path.join(out, "conversion.tsv"), "w") as f:
        f.write("\n".join(conv) + "\n")
    with open(os.path.join(out, "all.sql"), "w") as f:
        f.write("\n".join(all_sql))
    print(f"{repo}@{commit} {a.path} ({layout} layout, version = 20200101000000 + {seq} n seconds)")
    print(" ".join(f"{k}={v}" for k, v in stats.items()))
    print(f"wrote {mig_dir}, {out}/manifest.tsv ({len(manifest) - 1} files), {out}/conversion.tsv, {out}/all.sql")


if __name__ == "__main__":
    main()
