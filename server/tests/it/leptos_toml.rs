//! `Leptos.toml` (read by the release binary) must agree with the `[[workspace.metadata.leptos]]`
//! block cargo-leptos builds with; otherwise a deployed server looks for files that do not exist.

use std::path::PathBuf;

fn read(name: &str) -> toml::Table {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("read file");
    text.parse::<toml::Table>().expect("valid TOML")
}

fn table<'a>(value: &'a toml::Value, key: &str) -> &'a toml::Table {
    value
        .get(key)
        .and_then(toml::Value::as_table)
        .unwrap_or_else(|| panic!("missing [{key}]"))
}

#[test]
fn leptos_toml_matches_cargo_metadata() {
    let cargo = read("Cargo.toml");
    let workspace = toml::Value::Table(cargo);
    let build = table(&workspace, "workspace")
        .get("metadata")
        .and_then(|m| m.get("leptos"))
        .and_then(toml::Value::as_array)
        .and_then(|list| list.first())
        .and_then(toml::Value::as_table)
        .expect("[[workspace.metadata.leptos]] in Cargo.toml");

    let leptos = toml::Value::Table(read("Leptos.toml"));
    let runtime = table(&leptos, "package")
        .get("metadata")
        .and_then(|m| m.get("leptos"))
        .and_then(toml::Value::as_table)
        .expect("[package.metadata.leptos] in Leptos.toml");

    let keys = [
        "output-name",
        "site-root",
        "site-pkg-dir",
        "site-addr",
        "reload-port",
        "hash-files",
    ];
    // `env` is read only by the server (cargo-leptos ignores it), so it lives only in Leptos.toml.
    let runtime_only = ["env"];
    for key in keys {
        let built = build
            .get(key)
            .unwrap_or_else(|| panic!("Cargo.toml lacks {key}"));
        let served = runtime
            .get(key)
            .unwrap_or_else(|| panic!("Leptos.toml lacks {key}"));
        assert_eq!(
            built, served,
            "`{key}` differs between Cargo.toml and Leptos.toml"
        );
    }
    for key in runtime.keys() {
        assert!(
            keys.contains(&key.as_str()) || runtime_only.contains(&key.as_str()),
            "Leptos.toml has `{key}`, which this test does not compare"
        );
    }
}

#[test]
fn the_server_reads_leptos_toml() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Leptos.toml");
    let options = server::site::load(&path, "127.0.0.1:4321".parse().expect("addr")).expect("load");
    assert_eq!(&*options.output_name, "kefu");
    assert_eq!(&*options.site_pkg_dir, "pkg");
    assert_eq!(options.site_addr.to_string(), "127.0.0.1:4321");
}
