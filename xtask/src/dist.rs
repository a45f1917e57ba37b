//! What shiplog ships as, and the checks CI runs on it.
//!
//! - `cargo xtask dist`: the release archive
//!   `target/dist/shiplog-<version>-x86_64-unknown-linux-gnu.tar.gz` (the binary, README.md,
//!   LICENSE, CHANGELOG.md, `shiplog.service`, `shiplog.env`) and `SHA256SUMS` beside it.
//! - `cargo xtask image`: the container image `localhost/shiplog:<version>` (podman, from
//!   `packaging/Containerfile` over a root filesystem made here, nothing pulled) and its OCI
//!   archive `target/dist/shiplog-<version>-oci.tar`.
//! - `cargo xtask release-check` (part of `ci`): checks docs/deploy/'s examples, builds both,
//!   then runs the README's walkthrough against the unpacked archive's binary and against a
//!   container of the loaded OCI archive, and stops each with SIGTERM.
//!
//! Both refuse a binary that loads any library but glibc's: a machine without Rust, libpq or
//! OpenSSL must be able to run it.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// The one target released today.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The libraries the binary may load: glibc's (the loader, libc, libm) and GCC's unwinder.
const GLIBC: [&str; 4] = [
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
];

/// The largest image accepted (the issue's bound: 50 MB).
const IMAGE_LIMIT_BYTES: u64 = 50_000_000;

/// The unprivileged user the image runs as.
const IMAGE_USER: u32 = 10001;

/// The files of the archive besides the binary: (source in the repository, name in the archive).
const ARCHIVE_FILES: [(&str, &str); 5] = [
    ("README.md", "README.md"),
    ("LICENSE", "LICENSE"),
    ("CHANGELOG.md", "CHANGELOG.md"),
    ("packaging/shiplog.service", "shiplog.service"),
    ("packaging/shiplog.env", "shiplog.env"),
];

/// The workspace's version (`[workspace.package] version`).
fn version(root: &Path) -> Result<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    manifest
        .split("[workspace.package]")
        .nth(1)
        .and_then(|section| {
            section
                .lines()
                .take_while(|line| !line.starts_with('['))
                .find_map(|line| line.trim().strip_prefix("version = \""))
        })
        .and_then(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| "Cargo.toml has no [workspace.package] version".to_owned())
}

fn dist_dir(root: &Path) -> PathBuf {
    root.join("target").join("dist")
}

/// Runs a command to its end, failing with what it printed when it fails; returns stdout.
fn run(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The time files in the archive and image carry: the commit's (reproducible builds), or
/// `SOURCE_DATE_EPOCH` when set.
fn source_epoch(root: &Path) -> String {
    std::env::var("SOURCE_DATE_EPOCH").unwrap_or_else(|_| {
        run(Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(root))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "0".to_owned())
    })
}

/// The libraries an ELF binary names as `NEEDED`, from `readelf -d`.
fn needed_libraries(binary: &Path) -> Result<Vec<String>> {
    let dynamic = run(Command::new("readelf").arg("-d").arg(binary))?;
    Ok(parse_needed(&dynamic))
}

fn parse_needed(readelf: &str) -> Vec<String> {
    readelf
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.split(']').next())
        .map(str::to_owned)
        .collect()
}

/// Fails when the binary loads anything but glibc's libraries.
fn check_libraries(binary: &Path) -> Result<()> {
    let needed = needed_libraries(binary)?;
    let foreign: Vec<&String> = needed
        .iter()
        .filter(|lib| !GLIBC.contains(&lib.as_str()))
        .collect();
    if needed.is_empty() || !foreign.is_empty() {
        return Err(format!(
            "{} loads {foreign:?} besides glibc ({needed:?}): a machine without them could not \
             start it; link them in (see docs/ARCHITECTURE.md, \"Packaging\")",
            binary.display()
        ));
    }
    let symbols = run(Command::new("objdump").arg("-T").arg(binary))?;
    println!(
        "{}: {} bytes, loads only {needed:?}, needs glibc {} or newer",
        binary.display(),
        std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0),
        newest_glibc(&symbols).unwrap_or_else(|| "(unknown)".to_owned())
    );
    Ok(())
}

/// The newest `GLIBC_x.y` symbol version `objdump -T` names: the oldest glibc that can load
/// the binary.
fn newest_glibc(symbols: &str) -> Option<String> {
    symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let parts: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
            parts.map(|parts| (parts, version))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, version)| version.to_owned())
}

/// `cargo xtask dist`: builds the release binary and the archive; returns the archive's path.
pub(crate) fn dist(root: &Path) -> Result<PathBuf> {
    crate::cargo(&["build", "--release", "--locked", "-p", "shiplog-server"])?;
    let binary = root.join("target").join("release").join("shiplog");
    check_libraries(&binary)?;
    let version = version(root)?;
    let name = format!("shiplog-{version}-{TARGET}");
    let dist = dist_dir(root);
    let stage = dist.join(&name);
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(|e| format!("cannot create {stage:?}: {e}"))?;
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| format!("cannot copy {from:?} to {to:?}: {e}"))
    };
    copy(&binary, &stage.join("shiplog"))?;
    for (source, file) in ARCHIVE_FILES {
        copy(&root.join(source), &stage.join(file))?;
    }
    let archive = dist.join(format!("{name}.tar.gz"));
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--use-compress-program=gzip -n -9",
        ])
        .arg(format!("--mtime=@{}", source_epoch(root)))
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&dist)
        .arg(&name))?;
    std::fs::remove_dir_all(&stage).map_err(|e| format!("cannot remove {stage:?}: {e}"))?;
    checksums(&dist)?;
    println!(
        "{} ({} bytes)",
        archive.display(),
        std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0)
    );
    Ok(archive)
}

/// Writes `SHA256SUMS` for the archive and the OCI archive in `dist`.
fn checksums(dist: &Path) -> Result<()> {
    let mut files: Vec<String> = std::fs::read_dir(dist)
        .map_err(|e| format!("cannot list {dist:?}: {e}"))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.starts_with("shiplog-")
                && (name.ends_with(".tar.gz") || name.ends_with("-oci.tar"))
        })
        .collect();
    files.sort();
    let sums = run(Command::new("sha256sum").args(&files).current_dir(dist))?;
    std::fs::write(dist.join("SHA256SUMS"), sums).map_err(|e| format!("SHA256SUMS: {e}"))
}

/// `podman` with what these machines need (the runc runtime, cgroupfs, no default ulimits),
/// each only when it applies, so the same task works on a workstation's podman.
fn podman(root: &Path) -> Command {
    let mut command = Command::new("podman");
    if crate::on_path("runc") {
        command.args(["--runtime", "runc"]);
    }
    if !Path::new("/run/systemd/system").exists() {
        command.arg("--cgroup-manager=cgroupfs");
    }
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        let conf = dist_dir(root).join("containers.conf");
        let _ = std::fs::create_dir_all(dist_dir(root));
        let _ = std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n");
        command.env("CONTAINERS_CONF", conf);
    }
    command
}

/// `cargo xtask image`: the release archive's binary in an image of its own making; returns
/// the image's name.
pub(crate) fn image(root: &Path) -> Result<String> {
    dist(root)?;
    build_image(root)
}

/// The image of the release binary [`dist`] built and checked; returns the image's name.
fn build_image(root: &Path) -> Result<String> {
    crate::debian_packages(
        &[("podman", "podman"), ("runc", "runc")],
        "the container image is built and run with podman",
    )?;
    if !crate::on_path("podman") {
        return Err("podman is not installed: it builds the image".to_owned());
    }
    let version = version(root)?;
    let binary = root.join("target").join("release").join("shiplog");
    let context = dist_dir(root).join("image");
    let rootfs = context.join("rootfs");
    let _ = std::fs::remove_dir_all(&context);
    root_filesystem(&binary, &rootfs)?;
    let tag = format!("localhost/shiplog:{version}");
    let commit = run(Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root))
    .map(|s| s.trim().to_owned())
    .unwrap_or_else(|_| "unknown".to_owned());
    run(podman(root)
        .args(["build", "--format", "docker", "--timestamp"])
        .arg(source_epoch(root))
        .arg("-f")
        .arg(root.join("packaging").join("Containerfile"))
        .args(["-t", &tag])
        .args(["--label", "org.opencontainers.image.title=shiplog"])
        .arg("--label")
        .arg(format!("org.opencontainers.image.version={version}"))
        .arg("--label")
        .arg(format!("org.opencontainers.image.revision={commit}"))
        .args(["--label", "org.opencontainers.image.licenses=Apache-2.0"])
        .arg(&context))?;
    let size: u64 = run(podman(root).args(["image", "inspect", "--format", "{{.Size}}", &tag]))?
        .trim()
        .parse()
        .map_err(|e| format!("podman image inspect: size: {e}"))?;
    if size > IMAGE_LIMIT_BYTES {
        return Err(format!(
            "{tag} is {size} bytes, more than the {IMAGE_LIMIT_BYTES} allowed"
        ));
    }
    let oci = dist_dir(root).join(format!("shiplog-{version}-oci.tar"));
    let _ = std::fs::remove_file(&oci);
    run(podman(root)
        .args(["save", "--format", "oci-archive", "-o"])
        .arg(&oci)
        .arg(&tag))?;
    std::fs::remove_dir_all(&context).map_err(|e| format!("cannot remove {context:?}: {e}"))?;
    checksums(&dist_dir(root))?;
    println!(
        "{tag} ({size} bytes); {} ({} bytes)",
        oci.display(),
        std::fs::metadata(&oci).map(|m| m.len()).unwrap_or(0)
    );
    Ok(tag)
}

/// The image's root filesystem: the binary, the glibc files it loads (where this machine's
/// loader finds them), an unprivileged user, `/data` owned by it and a sticky `/tmp`.
fn root_filesystem(binary: &Path, rootfs: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let made = |path: &Path| {
        std::fs::create_dir_all(path).map_err(|e| format!("cannot create {path:?}: {e}"))
    };
    let bin = rootfs.join("usr/local/bin");
    made(&bin)?;
    std::fs::copy(binary, bin.join("shiplog")).map_err(|e| format!("copy the binary: {e}"))?;
    let ldd = run(Command::new("ldd").arg(binary))?;
    let mut copied = 0;
    for path in ldd.split_whitespace().filter(|word| word.starts_with('/')) {
        let library = Path::new(path);
        let name = library
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !GLIBC.contains(&name) {
            return Err(format!("ldd names {path}, which is not glibc's"));
        }
        let target = rootfs.join(path.trim_start_matches('/'));
        made(target.parent().unwrap_or(rootfs))?;
        // `copy` follows the symbolic link to the library's file.
        std::fs::copy(library, &target).map_err(|e| format!("copy {path}: {e}"))?;
        copied += 1;
    }
    if copied != GLIBC.len() {
        return Err(format!(
            "ldd named {copied} of glibc's {} files: {ldd}",
            GLIBC.len()
        ));
    }
    let etc = rootfs.join("etc");
    made(&etc)?;
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {path:?}: {e}"))
    };
    write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/:/sbin/nologin\n\
             shiplog:x:{IMAGE_USER}:{IMAGE_USER}:shiplog:/data:/sbin/nologin\n"
        ),
    )?;
    write(
        etc.join("group"),
        format!("root:x:0:\nshiplog:x:{IMAGE_USER}:\n"),
    )?;
    let data = rootfs.join("data");
    made(&data)?;
    // As root this hands /data to the image's user; otherwise podman's own user mapping does.
    let _ = std::os::unix::fs::chown(&data, Some(IMAGE_USER), Some(IMAGE_USER));
    let tmp = rootfs.join("tmp");
    made(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| format!("chmod /tmp: {e}"))?;
    Ok(())
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Waits until `base`/readyz answers 200 (a condition with a deadline); returns how long it
/// took from `since`.
fn wait_ready(
    base: &str,
    since: Instant,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<Duration> {
    let deadline = since + Duration::from_secs(60);
    loop {
        let answered = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &format!("{base}/readyz")])
            .status()
            .is_ok_and(|s| s.success());
        if answered {
            return Ok(since.elapsed());
        }
        alive()?;
        if Instant::now() > deadline {
            return Err(format!("{base}/readyz did not answer 200 within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The README's walkthrough as a script: its `sh` blocks, without the lines that start the
/// server (done by the caller), set `MASTER` (given in the environment) or only comment, with
/// `localhost:8080` replaced by `address`.
fn walkthrough_script(readme: &str, address: &str) -> Result<String> {
    let section = readme
        .split("\n## Walkthrough\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .ok_or("README.md has no \"## Walkthrough\" section")?;
    let mut script = String::new();
    for block in section.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        for line in block.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("cargo run")
                || trimmed.starts_with('#')
                || trimmed.starts_with("MASTER=")
            {
                continue;
            }
            script.push_str(&line.replace("localhost:8080", address));
            script.push('\n');
        }
    }
    if script.matches("curl ").count() < 5 {
        return Err(format!(
            "the README's walkthrough has fewer than 5 curl commands:\n{script}"
        ));
    }
    Ok(script)
}

/// Runs the README's walkthrough against the server at `address` with its master key, and
/// checks what it answers.
fn walkthrough(root: &Path, address: &str, master: &str) -> Result<()> {
    let readme = std::fs::read_to_string(root.join("README.md"))
        .map_err(|e| format!("cannot read README.md: {e}"))?;
    let script = walkthrough_script(&readme, address)?;
    let output = run(Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("MASTER", master))?;
    for expected in [
        "\"code\":\"acme\"",
        "\"slug\":\"my-project\"",
        "\"success\":true",
        "\"linked_requests\":[\"PR-123\"]",
        "\"commit_sha\":\"3f786850e387550fdab836ed7e6dc881de23001b\"",
    ] {
        if !output.contains(expected) {
            return Err(format!(
                "the walkthrough against {address} did not answer {expected}:\n{output}"
            ));
        }
    }
    println!("walkthrough against {address}: every step answered as the README says");
    Ok(())
}

/// Reads lines from a child's output into a channel, so a caller can wait for one.
fn lines_of(stream: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The generated master key in what the first start printed (an indented `shiplog_…` line).
fn master_key(printed: &str) -> Option<String> {
    printed
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("shiplog_") && !line.contains(' '))
        .map(str::to_owned)
}

/// Stops a child with SIGTERM and waits for it (a deadline of 35 s: shiplog's graceful stop
/// takes at most 30 s); fails unless it exits 0.
fn terminate(child: &mut Child) -> Result<Duration> {
    let asked = Instant::now();
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]))?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(asked.elapsed())
            } else {
                Err(format!("after SIGTERM it exited {status}"))
            };
        }
        if asked.elapsed() > Duration::from_secs(35) {
            let _ = child.kill();
            return Err("it did not stop within 35 s of SIGTERM".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The archive on a machine with nothing installed: unpacked, started with an empty
/// environment in an empty directory, walked through, stopped.
fn check_archive(root: &Path, archive: &Path) -> Result<()> {
    let dist = dist_dir(root);
    run(Command::new("sha256sum")
        .args(["--check", "--ignore-missing", "SHA256SUMS"])
        .current_dir(&dist))?;
    let unpacked = dist.join("check-archive");
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked).map_err(|e| format!("{unpacked:?}: {e}"))?;
    run(Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(&unpacked))?;
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .ok_or("the archive's name")?;
    let top = unpacked.join(name);
    for (_, file) in ARCHIVE_FILES {
        if !top.join(file).is_file() {
            return Err(format!("the archive has no {name}/{file}"));
        }
    }
    let binary = top.join("shiplog");
    verify_unit(&top, &binary)?;
    let version = version(root)?;
    let said = run(Command::new(&binary).arg("--version"))?;
    if !said.contains(&version) || !said.contains("commit ") {
        return Err(format!("`shiplog --version` said {said:?}"));
    }
    let port = free_port()?;
    let address = format!("127.0.0.1:{port}");
    let started = Instant::now();
    // An empty environment and an empty working directory: what a fresh machine gives it.
    let mut child = Command::new(&binary)
        .arg("serve")
        .env_clear()
        .env("SHIPLOG_BIND", &address)
        .current_dir(&top)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {binary:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let printed = lines_of(stdout);
    let outcome = (|| {
        let cold = wait_ready(&format!("http://{address}"), started, || {
            match child.try_wait() {
                Ok(Some(status)) => Err(format!("shiplog serve exited {status}")),
                _ => Ok(()),
            }
        })?;
        println!(
            "archive: ready {} ms after start (cold start, empty database)",
            cold.as_millis()
        );
        let mut text = String::new();
        while let Ok(line) = printed.recv_timeout(Duration::from_secs(5)) {
            text.push_str(&line);
            text.push('\n');
            if let Some(key) = master_key(&text) {
                walkthrough(root, &address, &key)?;
                let stopped = terminate(&mut child)?;
                println!("archive: stopped {} ms after SIGTERM", stopped.as_millis());
                return Ok(());
            }
        }
        Err(format!("no generated master key printed: {text}"))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&unpacked);
    outcome
}

/// The archive's systemd unit, as `systemd-analyze verify` reads it, pointed at the unpacked
/// binary and environment file (where systemd is installed; it warns of unknown keys on
/// standard error without failing, so any warning fails here).
fn verify_unit(top: &Path, binary: &Path) -> Result<()> {
    if !crate::on_path("systemd-analyze") {
        println!("systemd-analyze is not installed: shiplog.service not verified");
        return Ok(());
    }
    let unit = std::fs::read_to_string(top.join("shiplog.service"))
        .map_err(|e| format!("shiplog.service: {e}"))?
        .replace("/usr/local/bin/shiplog", &binary.display().to_string())
        .replace(
            "/etc/shiplog/shiplog.env",
            &top.join("shiplog.env").display().to_string(),
        );
    let checked = top.join("check");
    std::fs::create_dir_all(&checked).map_err(|e| format!("{checked:?}: {e}"))?;
    let path = checked.join("shiplog.service");
    std::fs::write(&path, unit).map_err(|e| format!("{path:?}: {e}"))?;
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .map_err(|e| format!("systemd-analyze: {e}"))?;
    let warned = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !warned.trim().is_empty() {
        return Err(format!("systemd-analyze verify shiplog.service: {warned}"));
    }
    println!("shiplog.service: systemd-analyze verify found nothing to say");
    Ok(())
}

/// The OCI archive loaded as a user would, run as the README says, walked through, checked
/// (user, data volume, health check), stopped with SIGTERM.
fn check_image(root: &Path, tag: &str) -> Result<()> {
    let version = version(root)?;
    let oci = dist_dir(root).join(format!("shiplog-{version}-oci.tar"));
    let _ = run(podman(root).args(["rmi", "--force", tag]));
    run(podman(root).arg("load").arg("-i").arg(&oci))?;
    let user = run(podman(root).args(["image", "inspect", "--format", "{{.Config.User}}", tag]))?;
    if user.trim() != format!("{IMAGE_USER}:{IMAGE_USER}") {
        return Err(format!("the image runs as {user:?}, not {IMAGE_USER}"));
    }
    let data = dist_dir(root).join("check-image-data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{data:?}: {e}"))?;
    std::os::unix::fs::chown(&data, Some(IMAGE_USER), Some(IMAGE_USER))
        .map_err(|e| format!("chown {data:?}: {e}"))?;
    let port = free_port()?;
    let name = format!("shiplog-check-{}", std::process::id());
    let started = Instant::now();
    run(podman(root)
        .args(["run", "--detach", "--name", &name])
        .args(["--publish", &format!("127.0.0.1:{port}:8080")])
        .arg("--volume")
        .arg(format!("{}:/data", data.display()))
        // The OCI format has no HEALTHCHECK; the same command a compose file declares.
        .args(["--health-cmd", "[\"/usr/local/bin/shiplog\", \"health\"]"])
        .arg(tag))?;
    let outcome = (|| {
        let address = format!("127.0.0.1:{port}");
        let cold = wait_ready(&format!("http://{address}"), started, || Ok(()))?;
        println!("image: ready {} ms after `podman run`", cold.as_millis());
        let logs = run(podman(root).args(["logs", &name]))?;
        let key = master_key(&logs).ok_or_else(|| format!("no master key in the logs: {logs}"))?;
        walkthrough(root, &address, &key)?;
        run(podman(root).args(["healthcheck", "run", &name]))?;
        // Any other command runs in the same container, as docs/operations.md shows.
        run(podman(root).args([
            "exec",
            &name,
            "shiplog",
            "backup",
            "--to",
            "/data/backup.db",
        ]))?;
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(data.join("shiplog.db")).map_err(|e| format!("/data: {e}"))?,
        );
        if owner != IMAGE_USER {
            return Err(format!("/data/shiplog.db belongs to uid {owner}"));
        }
        let asked = Instant::now();
        run(podman(root).args(["stop", "--time", "30", &name]))?;
        let code = run(podman(root).args(["inspect", "--format", "{{.State.ExitCode}}", &name]))?;
        if code.trim() != "0" {
            return Err(format!(
                "after SIGTERM the container exited {}",
                code.trim()
            ));
        }
        println!(
            "image: stopped {} ms after SIGTERM, exit 0",
            asked.elapsed().as_millis()
        );
        Ok(())
    })();
    let _ = run(podman(root).args(["rm", "--force", &name]));
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

/// docs/deploy/'s compose file and Kubernetes manifest, checked by `tests/deploy/check.py`
/// with the Compose Specification's schema and Kubernetes' own.
fn check_deploy_examples(root: &Path) -> Result<()> {
    let Some(bin) = crate::python_tools()? else {
        return Ok(());
    };
    let said = run(Command::new(bin.join("python"))
        .arg(root.join("tests").join("deploy").join("check.py"))
        .arg(root)
        .arg(version(root)?))?;
    print!("{said}");
    Ok(())
}

/// `cargo xtask release-check`: the archive and the image, built and tried as users would,
/// and the deployment examples checked.
pub(crate) fn release_check(root: &Path) -> Result<()> {
    check_deploy_examples(root)?;
    let archive = dist(root)?;
    check_archive(root, &archive)?;
    let tag = build_image(root)?;
    check_image(root, &tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_libraries_are_read_from_readelf() {
        let readelf = " 0x0000000000000001 (NEEDED)             Shared library: [libpq.so.5]\n \
                       0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n \
                       0x000000000000000c (INIT)               0x1000\n";
        assert_eq!(parse_needed(readelf), ["libpq.so.5", "libc.so.6"]);
    }

    #[test]
    fn the_newest_glibc_version_is_read_from_objdump() {
        let symbols = "0000 DF *UND* 0000 (GLIBC_2.2.5) memcpy\n\
                       0000 DF *UND* 0000 (GLIBC_2.34) __libc_start_main\n\
                       0000 DF *UND* 0000 (GLIBC_2.17) clock_gettime\n";
        assert_eq!(newest_glibc(symbols).as_deref(), Some("2.34"));
        assert_eq!(newest_glibc("no versions here"), None);
    }

    #[test]
    fn the_readme_walkthrough_is_a_script() {
        let root = crate::workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let script = walkthrough_script(&readme, "127.0.0.1:9").unwrap();
        assert!(!script.contains("localhost:8080"), "{script}");
        assert!(!script.contains("cargo run"), "{script}");
        assert!(script.contains("$MASTER"), "{script}");
        assert!(script.contains("127.0.0.1:9/api/webhooks/ci"), "{script}");
    }

    #[test]
    fn the_master_key_is_found_in_the_first_start_output() {
        let printed = "No master key was configured, so shiplog generated one. It is shown \
                       only now;\n\n    shiplog_abc123\n\nSet SHIPLOG_ADMIN_KEY to choose.\n";
        assert_eq!(master_key(printed).as_deref(), Some("shiplog_abc123"));
        assert_eq!(master_key("shiplog listening"), None);
    }

    /// The README and the deployment examples name the files and image of this version.
    #[test]
    fn the_docs_name_this_version_s_release() {
        let root = crate::workspace_root();
        let version = version(&root).unwrap();
        let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
        let readme = read("README.md");
        for name in [
            format!("shiplog-{version}-{TARGET}.tar.gz"),
            format!("./shiplog-{version}-{TARGET}/shiplog serve"),
            format!("shiplog-{version}-oci.tar"),
            format!("localhost/shiplog:{version}"),
        ] {
            assert!(readme.contains(&name), "README.md does not name {name}");
        }
        for path in [
            "docs/operations.md",
            "docs/deploy/compose.yaml",
            "docs/deploy/kubernetes.yaml",
        ] {
            assert!(
                read(path).contains(&format!("localhost/shiplog:{version}")),
                "{path}"
            );
        }
    }

    #[test]
    fn the_version_is_the_workspace_s() {
        let version = version(&crate::workspace_root()).unwrap();
        assert!(version.split('.').count() == 3, "{version}");
    }
}
