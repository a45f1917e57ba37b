//! The dashboard's stylesheet, script and icon, compiled into the binary (nothing is fetched from
//! anywhere else, so the dashboard works on an air-gapped network).
//!
//! Each is served under a name that carries the first 16 hex digits of its SHA-256
//! (`/assets/shiplog-1f2e….css`), with `Cache-Control: immutable` for a year: a new build
//! with a changed file has a new name, so a browser never keeps a stale copy.

use std::sync::LazyLock;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

/// The route that serves every asset.
pub const PATH: &str = "/assets/{name}";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name with its content hash, as pages link to it.
    pub name: String,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest
            .iter()
            .take(8)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Self {
            name: format!("{stem}-{hex}.{extension}"),
            content_type,
            body,
        }
    }

    /// The URL pages link to.
    pub fn url(&self) -> String {
        format!("/assets/{}", self.name)
    }
}

/// The stylesheet.
pub static STYLESHEET: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "shiplog",
        "css",
        "text/css; charset=utf-8",
        include_str!("../assets/shiplog.css"),
    )
});

/// The script: local times, the live deployments list.
pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "shiplog",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/shiplog.js"),
    )
});

/// The icon browsers show in tabs.
pub static ICON: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "shiplog",
        "svg",
        "image/svg+xml",
        include_str!("../assets/icon.svg"),
    )
});

/// `GET /assets/{name}`: an embedded file by its hashed name; any other name is not found.
pub(crate) async fn serve(name: web::Path<String>) -> HttpResponse {
    match [&*STYLESHEET, &*SCRIPT, &*ICON]
        .into_iter()
        .find(|asset| asset.name == *name)
    {
        Some(asset) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, asset.content_type))
            .insert_header((CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.body),
        None => HttpResponse::NotFound()
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("no such asset: pages link to the current names"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        let a = Asset::new("x", "css", "text/css", "a{}");
        let b = Asset::new("x", "css", "text/css", "b{}");
        assert_ne!(a.name, b.name);
        assert!(a.name.starts_with("x-") && a.name.ends_with(".css"));
        assert_eq!(a.name.len(), "x-".len() + 16 + ".css".len());
    }
}
