//! HTTPS served directly, by the real `shiplog` binary with a self-signed certificate:
//! handshakes present the configured chain, plain HTTP is refused, `shiplog health` asks over
//! HTTPS, SIGHUP swaps in a renewed certificate, a broken renewal keeps the previous one, and
//! SIGTERM still stops it cleanly. A certificate that cannot be read stops the start.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const MASTER: &str = "tls-master-key-0123456789";

struct SelfSigned {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn self_signed() -> SelfSigned {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    SelfSigned {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn install(certificate: &SelfSigned, dir: &Path) {
    std::fs::write(dir.join("cert.pem"), &certificate.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &certificate.key_pem).unwrap();
}

/// The server, its log lines as they come, killed if the test fails half-way.
struct Server {
    child: Child,
    lines: Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Waits for a log line containing `needle` (the server's own word that it did something).
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no log line with {needle:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the server ended before logging {needle:?}")
                }
            }
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

fn serve(dir: &Path, port: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("serve")
        .env("SHIPLOG_DATABASE_URL", dir.join("shiplog.db"))
        .env("SHIPLOG_BIND", format!("127.0.0.1:{port}"))
        .env("SHIPLOG_ADMIN_KEY", MASTER)
        .env("SHIPLOG_TLS_CERT", dir.join("cert.pem"))
        .env("SHIPLOG_TLS_KEY", dir.join("key.pem"))
        .env("SHIPLOG_LOG", "info")
        .env("SHIPLOG_NO_HOOK_WORKER", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    Server {
        child,
        lines: lines_of(stderr),
    }
}

/// A child's output, line by line as it comes.
fn lines_of(stream: std::process::ChildStderr) -> Receiver<String> {
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// GET /readyz over a new connection that trusts only `trusted`; the certificate the server
/// presented.
async fn presented(port: u16, trusted: &SelfSigned) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_der(&trusted.der).unwrap())
        .tls_info(true)
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .unwrap()
}

fn health(port: u16, dir: &Path, https: bool) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shiplog"));
    command
        .arg("health")
        .env("SHIPLOG_BIND", format!("127.0.0.1:{port}"))
        .env_remove("SHIPLOG_TLS_CERT")
        .env_remove("SHIPLOG_TLS_KEY");
    if https {
        command
            .env("SHIPLOG_TLS_CERT", dir.join("cert.pem"))
            .env("SHIPLOG_TLS_KEY", dir.join("key.pem"));
    }
    command.output().unwrap()
}

#[actix_web::test]
async fn https_with_a_self_signed_certificate_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed();
    install(&first, dir.path());
    let port = common::free_port();
    let mut server = serve(dir.path(), port);
    let listening = server.wait_for("shiplog listening");
    assert!(
        listening.contains(&format!("127.0.0.1:{port}")),
        "{listening}"
    );

    assert_eq!(presented(port, &first).await, first.der);
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await;
    assert!(
        plain.is_err(),
        "plain HTTP was answered on the HTTPS port: {plain:?}"
    );
    let asked = health(port, dir.path(), true);
    assert!(asked.status.success(), "{asked:?}");
    assert!(String::from_utf8_lossy(&asked.stdout).contains("https://127.0.0.1:"));
    let asked = health(port, dir.path(), false);
    assert!(!asked.status.success(), "{asked:?}");

    // A renewal written half-way (a key that is not PEM) is refused; the old chain stays.
    std::fs::write(
        dir.path().join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nbroken",
    )
    .unwrap();
    server.signal("HUP");
    let refused = server.wait_for("SIGHUP");
    assert!(refused.contains("not reloaded"), "{refused}");
    assert!(refused.contains("SHIPLOG_TLS_KEY"), "{refused}");
    assert_eq!(presented(port, &first).await, first.der);

    // The renewal completed: new handshakes get the new certificate.
    let second = self_signed();
    install(&second, dir.path());
    server.signal("HUP");
    let reloaded = server.wait_for("SIGHUP");
    assert!(reloaded.contains("read again"), "{reloaded}");
    assert_eq!(presented(port, &second).await, second.der);

    server.signal("TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Without TLS, SIGHUP (a `systemctl reload`) is logged and the server goes on serving, where
/// the signal's default would end the process.
#[actix_web::test]
async fn sighup_without_tls_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiplog"))
        .arg("serve")
        .env("SHIPLOG_DATABASE_URL", dir.path().join("shiplog.db"))
        .env("SHIPLOG_BIND", format!("127.0.0.1:{port}"))
        .env("SHIPLOG_ADMIN_KEY", MASTER)
        .env("SHIPLOG_LOG", "info")
        .env("SHIPLOG_NO_HOOK_WORKER", "true")
        .env_remove("SHIPLOG_TLS_CERT")
        .env_remove("SHIPLOG_TLS_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server {
        child,
        lines: lines_of(stderr),
    };
    server.wait_for("shiplog listening");
    server.signal("HUP");
    let said = server.wait_for("SIGHUP");
    assert!(said.contains("nothing to reload"), "{said}");
    let answered = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
}

#[test]
fn a_certificate_that_cannot_be_read_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), common::free_port());
    let status = server.child.wait().unwrap();
    assert!(!status.success());
    // The reader ends at the end of the pipe, after the last line.
    let said: Vec<String> = server.lines.iter().collect();
    let said = said.join("\n");
    assert!(said.contains("SHIPLOG_TLS_CERT"), "{said}");
    assert!(said.contains("cert.pem"), "{said}");
}
