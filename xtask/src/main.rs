//! `cargo xtask run` and `cargo xtask test`: install what is missing, build, run.
//!
//! Standard library only, so it builds in seconds on a fresh machine.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const CARGO_LEPTOS: &str = "0.3.10";
const WASM_BINDGEN: &str = "0.2.130";
const BINARYEN: &str = "132.0.0";
/// The real Alembic, for the sandbox's migration tests, and what it needs
/// to reach PostgreSQL.
const PYTHON_PACKAGES: [(&str, &str); 3] = [
    ("alembic", "1.20.1"),
    ("sqlalchemy", "2.1.9"),
    ("psycopg2-binary", "2.9.13"),
];

/// schemathesis, which the REST API's property-based test runs against a
/// sandbox panel (`tests/tests/schemathesis.rs`), in a virtualenv of its own.
const SCHEMATHESIS: (&str, &str) = ("schemathesis", "4.32.5");

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("tools") => tools(false),
        Some("bench") => bench(),
        _ => {
            eprintln!(
                "usage: cargo xtask run [-- sandbox options]   build the release panel and start `flightdeck sandbox`\n       \
                 cargo xtask test                          run every test (unit, both stores, HTTP, CLI, browser)\n       \
                 cargo xtask bench                         the overview, webhook and audit trail benchmarks (release build)\n       \
                 cargo xtask tools                         only install the build tools"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_owned()
}

/// Where cargo-leptos puts the site: `site-root` in Cargo.toml is
/// `target/site` under the workspace, whatever CARGO_TARGET_DIR says.
fn site_root() -> PathBuf {
    root().join("target/site")
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Where tools installed from npm and PyPI live, outside the checkout so a fresh
/// clone does not install them again.
fn tools_dir() -> PathBuf {
    let home = env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(env::temp_dir);
    home.join(".local/share/flightdeck-tools")
}

/// The virtualenv with the real Alembic, beside the npm tools.
fn alembic_venv() -> PathBuf {
    tools_dir().join("alembic-venv")
}

/// The virtualenv with schemathesis.
fn schemathesis_venv() -> PathBuf {
    tools_dir().join("schemathesis-venv")
}

/// Creates the Alembic virtualenv and installs the pinned packages, unless
/// they are there already.
fn alembic_tools() -> Result<(), String> {
    python_tools(&alembic_venv(), &PYTHON_PACKAGES)
}

/// Creates the schemathesis virtualenv and installs the pinned version,
/// unless it is there already.
fn schemathesis_tools() -> Result<(), String> {
    python_tools(&schemathesis_venv(), &[SCHEMATHESIS])
}

/// Creates the virtualenv `venv` and installs `packages` (name, version)
/// into it, unless exactly those versions are there already.
fn python_tools(venv: &Path, packages: &[(&str, &str)]) -> Result<(), String> {
    let python = venv.join("bin/python");
    let python = python.to_str().ok_or("the tools path is not UTF-8")?;
    let wanted: Vec<&str> = packages.iter().map(|(_, v)| *v).collect();
    let names: Vec<String> = packages.iter().map(|(n, _)| format!("{n:?}")).collect();
    let probe = format!(
        "from importlib.metadata import version; print(*(version(n) for n in [{}]))",
        names.join(", ")
    );
    let installed = output_of(python, &["-c", &probe]).unwrap_or_default();
    if installed.split_whitespace().collect::<Vec<_>>() == wanted {
        return Ok(());
    }
    if output_of(python, &["--version"]).is_none() {
        status(command("python3").args(["-m", "venv"]).arg(venv)).map_err(|e| {
            format!("{e}\n  the migration and API tests need Python 3 with venv: `apt-get install python3 python3-venv`")
        })?;
    }
    status(
        command(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages.iter().map(|(n, v)| format!("{n}=={v}"))),
    )
}

/// PATH with the npm tools first, so a registry `wasm-opt` wins over
/// Debian's (version 108 builds a bundle that never hydrates).
fn path_with_tools() -> OsString {
    let mut paths = vec![tools_dir().join("node_modules/.bin")];
    if let Some(home) = env::var_os("HOME") {
        paths.push(PathBuf::from(home).join(".cargo/bin"));
    }
    paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(paths).expect("PATH entries contain no separator")
}

fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PATH", path_with_tools()).current_dir(root());
    cmd
}

fn status(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = command(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs what is missing: the wasm target, cargo-leptos, wasm-bindgen,
/// wasm-opt, the real Alembic in a virtualenv and, for the browser tests,
/// Chromium and ChromeDriver.
fn tools(browser: bool) -> Result<(), String> {
    let targets = output_of("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !targets
        .lines()
        .any(|t| t.trim() == "wasm32-unknown-unknown")
    {
        status(command("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let leptos = output_of("cargo", &["leptos", "--version"]).unwrap_or_default();
    if !leptos.contains(CARGO_LEPTOS) {
        eprintln!("xtask: installing cargo-leptos {CARGO_LEPTOS} (about 10 minutes on 2 cores)");
        status(command("cargo").args([
            "install",
            "cargo-leptos",
            "--locked",
            "--version",
            CARGO_LEPTOS,
        ]))?;
    }
    let bindgen = output_of("wasm-bindgen", &["--version"]).unwrap_or_default();
    if !bindgen.contains(WASM_BINDGEN) {
        // Without --locked: its lock file names a crate version the registry lacks.
        status(command("cargo").args(["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN]))?;
    }
    let opt = output_of("wasm-opt", &["--version"]).unwrap_or_default();
    if !opt.contains(&format!(
        "version {}",
        BINARYEN.split('.').next().unwrap_or("132")
    )) {
        let dir = tools_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        status(
            command("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg(format!("binaryen@{BINARYEN}")),
        )?;
    }
    alembic_tools()?;
    if browser {
        // Only the tests run it.
        schemathesis_tools()?;
    }
    if browser
        && (output_of("chromium", &["--version"]).is_none()
            || output_of("chromedriver", &["--version"]).is_none()
            || output_of("curl", &["--version"]).is_none())
    {
        eprintln!(
            "xtask: installing Debian's chromium, chromium-driver and curl for the browser and export tests"
        );
        status(command("apt-get").args(["update", "-qq"]))
            .and_then(|()| status(command("apt-get").args(["install", "-y", "-qq", "chromium", "chromium-driver", "curl"])))
            .map_err(|e| format!("{e}\n  the tests need Chromium and curl: run `apt-get install chromium chromium-driver curl` as root"))?;
    }
    Ok(())
}

/// Builds the release panel (server and wasm-optimised bundle) and starts the sandbox.
fn run(extra: &[String]) -> Result<(), String> {
    tools(false)?;
    status(command("cargo").args(["leptos", "build", "--release"]))?;
    let binary = target_dir().join("release/flightdeck");
    let mut cmd = command(binary.to_str().ok_or("the target path is not UTF-8")?);
    cmd.env("FLIGHTDECK_SITE_ROOT", site_root())
        .arg("sandbox")
        .args(extra.iter().filter(|a| *a != "--"));
    status(&mut cmd)
}

/// Builds the release panel, then loads its overview page and a bare axum
/// handler in the same run (`tests/benches/overview.rs`), and measures
/// webhook-to-browser latency (`tests/benches/webhooks.rs`) and the audit
/// trail at 1,000,000 events on both stores (`tests/benches/audit.rs`).
fn bench() -> Result<(), String> {
    tools(false)?;
    status(command("cargo").args(["leptos", "build", "--release"]))?;
    bundle_size()?;
    for bench in ["overview", "webhooks", "audit"] {
        status(
            command("cargo")
                .args(["bench", "-p", "flightdeck-tests", "--bench", bench])
                .env("FLIGHTDECK_SITE_ROOT", site_root())
                .env("FLIGHTDECK_BIN", target_dir().join("release/flightdeck")),
        )?;
    }
    Ok(())
}

/// Prints the size of the release browser bundle (the wasm, and the wasm
/// and its JavaScript glue with `gzip -9`, as DESIGN §11 counts it).
fn bundle_size() -> Result<(), String> {
    let pkg = site_root().join("pkg");
    let mut total_gzip = 0;
    for file in ["flightdeck.wasm", "flightdeck.js"] {
        let path = pkg.join(file);
        let raw = std::fs::metadata(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        let gzip = output_of(
            "sh",
            &["-c", &format!("gzip -9 -c '{}' | wc -c", path.display())],
        )
        .and_then(|out| out.trim().parse::<u64>().ok())
        .ok_or("cannot run gzip")?;
        total_gzip += gzip;
        println!("bundle: {file} {raw} bytes, {gzip} bytes with gzip -9");
    }
    println!("bundle: {total_gzip} bytes with gzip -9 in all (DESIGN §11: at most 250 KB)");
    Ok(())
}

/// Builds the panel and its bundle as the browser tests need them, then runs every test.
fn test(extra: &[String]) -> Result<(), String> {
    tools(true)?;
    // cargo-leptos dev builds use this cfg; the same flag lets `cargo test`
    // reuse that build instead of compiling every crate twice.
    let rustflags = "--cfg erase_components";
    status(
        command("cargo")
            .args(["leptos", "build"])
            .env("RUSTFLAGS", rustflags),
    )?;
    status(
        command("cargo")
            // The default members: every crate but the wasm-only `frontend`.
            .args(["test", "--no-fail-fast"])
            .args(extra.iter().filter(|a| *a != "--"))
            .env("RUSTFLAGS", rustflags)
            .env("FLIGHTDECK_SITE_ROOT", site_root())
            .env("FLIGHTDECK_BIN", target_dir().join("debug/flightdeck"))
            .env("FLIGHTDECK_ALEMBIC", alembic_venv().join("bin/alembic"))
            .env(
                "FLIGHTDECK_SCHEMATHESIS",
                schemathesis_venv().join("bin/schemathesis"),
            ),
    )
}
