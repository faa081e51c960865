//! The committed `schema/schema.graphql` must match the code. Regenerate with
//! `UPDATE_SCHEMA=1 cargo nextest run -p linkplane-schema --test sdl`.

#[test]
fn committed_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = linkplane_schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).expect("writing schema.graphql");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema/schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo nextest run -p linkplane-schema --test sdl` and commit it"
    );
}
