//! An in-memory Kubernetes API server that kubectl and kube-rs use unchanged.
