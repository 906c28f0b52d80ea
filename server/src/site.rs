//! The console's site options, read from `Leptos.toml` at start.
//!
//! cargo-leptos passes these through environment variables while developing; a deployed binary
//! has no such environment, so it reads the same values from the file. `LEPTOS_*` variables, when
//! set, still override the file (leptos_config's own rule).
//!
//! The console's files carry content hashes, listed in `hash.txt` next to the binary (where
//! cargo-leptos writes it and the release tarball keeps it). A binary without one — a test run
//! from cargo's own folders — serves the plain names instead.

use crate::{Error, Result};
use leptos::config::LeptosOptions;
use std::net::SocketAddr;
use std::path::Path;

/// Reads the options and points them at the address the server actually binds.
pub fn load(path: &Path, bind: SocketAddr) -> Result<LeptosOptions> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Site(format!("{} is not a UTF-8 path", path.display())))?;
    let conf = leptos::config::get_configuration(Some(text))
        .map_err(|error| Error::Site(format!("{}: {error}", path.display())))?;
    let mut options = conf.leptos_options;
    options.site_addr = bind;
    if options.hash_files && !beside_binary(&options.hash_file) {
        tracing::debug!(
            "no {} beside the binary: the console's files keep plain names",
            options.hash_file
        );
        options.hash_files = false;
    }
    Ok(options)
}

/// Whether `name` exists in the running binary's folder (where Leptos looks for it).
fn beside_binary(name: &str) -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .is_some_and(|path| path.exists())
}
