//! Two link-time choices that keep the memory of every `keel` process small,
//! each taken only where the toolchain supports it (a probe link decides, so
//! a build never fails because of them).
//!
//! **Packed relative relocations** (`-z pack-relative-relocs`, DT_RELR).
//!
//! keel is a position-independent executable: at every start the loader
//! patches each pointer in its tables (vtables, string tables of the SQL
//! grammar). Stored the classic way, that list of patches is 1.8 MB, read
//! in full by every `keel` process; packed, it is 30 kB, and `keel status`
//! peaks at 2 MB less memory. glibc reads packed ones since 2.36 and GNU ld
//! writes them since 2.38; where either is older, the probe below fails and
//! keel links as before.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    // Only for the linker rustc uses by default on glibc Linux, `cc`, and
    // only when building for the machine that builds (the probe runs `cc`).
    if !target.ends_with("-linux-gnu") || target != host {
        return;
    }
    if probe() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    startup_order();
}

/// **The functions everyday commands run, side by side.** The kernel maps a
/// program's code in 64 kB windows around each page it first touches. Linked
/// in the compiler's order, the functions `keel up` runs are spread over
/// 17 MB of code and `keel up` kept 8 MB of it resident. `link/startup.order`
/// lists the functions everyday commands run (`link/refresh-startup-order`
/// writes it from callgrind); a linker script made from it puts them first,
/// together. Release builds only, and only where rustc's linker takes the
/// script (LLD, rustc's default on x86-64 Linux, and GNU ld do).
///
/// The same for read-only data: `link/startup-rodata.order` lists the
/// pieces (strings, tables) those commands read, which the compiler's
/// order spread over 2.5 MB; together they are a few hundred kB.
/// `KEEL_LINK_MAP=FILE` also writes the linker's map there, from which the
/// refresh finds those pieces.
fn startup_order() {
    let link =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link");
    let (order, data) = (
        link.join("startup.order"),
        link.join("startup-rodata.order"),
    );
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-changed={}", data.display());
    println!("cargo:rerun-if-env-changed=KEEL_LINK_MAP");
    let (Ok("release"), Ok(list), Some(out)) = (
        std::env::var("PROFILE").as_deref(),
        std::fs::read_to_string(&order),
        std::env::var_os("OUT_DIR"),
    ) else {
        return;
    };
    let data = std::fs::read_to_string(&data).unwrap_or_default();
    let script = PathBuf::from(out).join("startup.ld");
    if std::fs::write(&script, linker_script(&list) + &data_script(&data)).is_err() {
        return;
    }
    let arg = format!("-Wl,-T,{}", script.display());
    if links_with(&arg) {
        println!("cargo:rustc-link-arg-bins={arg}");
        if let Some(map) = std::env::var_os("KEEL_LINK_MAP") {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,-Map={}",
                map.to_string_lossy()
            );
        }
    }
}

/// The part of the linker script for read-only data: one output section
/// before `.rodata` with the listed input sections in order. Their names
/// are the compiler's (`.rodata..Lanon.HASH.N` for an unnamed constant,
/// the hash one per part of a crate); one this build lacks matches nothing.
fn data_script(list: &str) -> String {
    let names: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|n| {
            n.starts_with(".rodata")
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
        })
        .collect();
    if names.is_empty() {
        return String::new();
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = String::from("SECTIONS\n{\n  .rodata.keel_startup : {\n");
    for name in names.into_iter().filter(|n| seen.insert(*n)) {
        out.push_str(&format!("    *({name})\n"));
    }
    out.push_str("  }\n}\nINSERT BEFORE .rodata;\n");
    out
}

/// A linker script that adds one output section before `.text` holding the
/// listed functions' sections (rustc and cc put each function in its own)
/// in the list's order. `INSERT` keeps the linker's default layout for all
/// else; a listed name this build lacks matches nothing.
///
/// Two kinds of name change without a change of the function, and each
/// gets a wildcard so that the list does not go stale with every edit:
/// the `.llvm.N` suffix LLVM gives a function shared between the parts of
/// a crate (it changes with any edit of that part), and the hash of a
/// generic function's copy for one type (`17h…E`; it changes when the
/// closures of the function that uses it are renumbered). The exact names
/// come first, in order; then, for each hashed name, every copy of that
/// function, so that a copy whose hash changed is still near the others.
fn linker_script(list: &str) -> String {
    let names: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
        })
        .collect();
    let suffixless = |n: &str| match n.find(".llvm.") {
        Some(i) => format!("{}.llvm.*", &n[..i]),
        None => n.to_string(),
    };
    let any_hash = |n: &str| {
        let i = n.rfind("17h")?;
        let hash = n.get(i + 3..i + 19)?;
        let tail = n.get(i + 19..)?;
        (hash.bytes().all(|b| b.is_ascii_hexdigit()) && tail.starts_with('E'))
            .then(|| format!("{}17h*", &n[..i]))
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = String::from("SECTIONS\n{\n  .text.keel_startup : {\n");
    let patterns = names
        .iter()
        .map(|n| suffixless(n))
        .chain(names.iter().filter_map(|n| any_hash(n)));
    for pattern in patterns {
        if seen.insert(pattern.clone()) {
            // Cold functions (`#[cold]`, panics) are in `.text.unlikely.NAME`.
            out.push_str(&format!(
                "    *(.text.{pattern} .text.unlikely.{pattern})\n"
            ));
        }
    }
    out.push_str("  }\n}\nINSERT BEFORE .text;\n");
    out
}

/// Whether rustc, with the flags cargo gives keel (a linker chosen in them
/// included), links a program with this linker argument.
fn links_with(arg: &str) -> bool {
    let (Some(out), Some(rustc)) = (std::env::var_os("OUT_DIR"), std::env::var_os("RUSTC")) else {
        return false;
    };
    let out = PathBuf::from(out);
    let src = out.join("order_probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(rustc);
    rustc
        .arg(&src)
        .arg("-o")
        .arg(out.join("order-probe"))
        .args(["--target", &std::env::var("TARGET").unwrap_or_default()]);
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    rustc.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    let linked = rustc
        .arg(format!("-Clink-arg={arg}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // A script that links but lays out a program that cannot start is
    // caught here too (only when the target is the machine building).
    let runs = std::env::var("TARGET") != std::env::var("HOST")
        || Command::new(out.join("order-probe"))
            .status()
            .is_ok_and(|s| s.success());
    linked && runs
}

/// Whether `cc` links a program with packed relative relocations: a linker
/// that does not know the option, or a C library that cannot load the
/// result (no `GLIBC_ABI_DT_RELR`), fails here instead of in keel's link.
fn probe() -> bool {
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let exe = out.join("relr-probe");
    let child = Command::new("cc")
        .args(["-x", "c", "-", "-o"])
        .arg(&exe)
        .arg("-Wl,-z,pack-relative-relocs")
        .arg("-Wl,--fatal-warnings")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"static int x; int *p = &x; int main(void) { return *p; }\n");
    }
    let linked = child.wait().is_ok_and(|s| s.success());
    // The probe must also run: the C library is the one that reads the result.
    linked && Command::new(&exe).status().is_ok_and(|s| s.success())
}
