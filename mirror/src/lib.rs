//! Per-cluster reconcilers that mirror exported services between linked clusters.
