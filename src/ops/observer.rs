//! The observer: a live web page of the tree, the quotas and the robot, served by the
//! operations endpoint at `/` (its assets embedded in the binary), fed by `/events`
//! (Server-Sent Events) and, when `[http] control_token` is set, able to restart,
//! suspend and resume actors (`POST /actors/<path>/<action>`).

pub mod controls;
pub mod events;
pub mod state;
pub mod timeline;

pub use controls::Controls;
pub use state::{Layout, RobotSources};
pub use timeline::Timeline;

/// An embedded file of the page: its path, content type and bytes.
pub struct Asset {
    /// The path it is served at.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// The page's files, embedded at build time: nothing is fetched at run time.
pub const ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../assets/observer/index.html"),
    },
    Asset {
        path: "/observer.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/observer/observer.js"),
    },
    Asset {
        path: "/observer.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/observer/observer.css"),
    },
];

/// The page's policy: its own files only, no inline script, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                       script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// The asset served at `path`, if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
