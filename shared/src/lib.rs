//! coedit: a serverless backend for real-time co-editing of Beefree-style
//! templates. Everything with logic lives in this crate; the Lambda binaries in
//! `functions/` and the local stack in `local/` are thin wrappers around
//! `handlers`. Layers (docs/DESIGN.md): `handlers` → `usecase` → `session` and
//! `patch` (pure rules), `store`, `notify`.

pub mod api_key;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod handlers;
pub mod metrics;
pub mod notify;
pub mod patch;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod usecase;

pub use app::App;
pub use error::{Code, Error, Result};
