//! The committed JSON Schema agrees with the parser on the example manifests and a bad one.

use std::path::{Path, PathBuf};

use linkplane_gitops::{manifest, yaml};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn validator() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(root().join("schema/manifests/linkplane.io_v1alpha1.schema.json"))
            .expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn documents(text: &str) -> Vec<serde_json::Value> {
    yaml::parse_documents(text)
        .expect("valid YAML")
        .iter()
        .map(yaml::Node::to_json)
        .collect()
}

#[test]
fn schema_accepts_every_example_manifest_and_the_parser_agrees() {
    let dir = root().join("examples/gitops");
    let read = linkplane_gitops::reader::read(linkplane_gitops::reader::Source::Dir(&dir))
        .expect("examples readable");
    assert!(read.refused.is_empty(), "{:?}", read.refused);
    let files = read.files;
    assert!(
        files.len() >= 5,
        "expected the example manifests, got {}",
        files.len()
    );
    let v = validator();
    let mut docs = 0;
    for f in &files {
        for doc in documents(std::str::from_utf8(&f.content).expect("utf-8")) {
            let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", f.path);
            docs += 1;
        }
    }
    assert_eq!(docs, 3 + 6 + 1);
    let rev = manifest::parse_files(&files).expect("examples are a valid revision");
    assert_eq!(
        (rev.clusters.len(), rev.links.len(), rev.policies.len()),
        (3, 6, 1)
    );
}

#[test]
fn schema_rejects_bad_manifests() {
    let v = validator();
    let bad = [
        // Unknown field in a link spec.
        "apiVersion: linkplane.io/v1alpha1\nkind: Link\nmetadata: {name: l}\nspec: {source: a, target: b, tagret: c}\n",
        // Inline credentials.
        "apiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec: {apiServer: 'https://x', credentials: {kubeconfig: 'apiVersion: v1'}}\n",
        // Unknown kind.
        "apiVersion: linkplane.io/v1alpha1\nkind: Service\nmetadata: {name: s}\nspec: {}\n",
        // Bad name and port.
        "apiVersion: linkplane.io/v1alpha1\nkind: Cluster\nmetadata: {name: Bad_Name}\nspec: {apiServer: 'https://x', credentials: {kubeconfigFile: /k}, gateway: {addresses: [a], port: 0}}\n",
    ];
    for text in bad {
        let doc = documents(text).remove(0);
        assert!(!v.is_valid(&doc), "schema accepted:\n{text}");
    }
}
