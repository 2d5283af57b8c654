//! Links keel with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) where the system's linker and C library support them.
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
