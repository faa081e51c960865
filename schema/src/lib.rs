//! The GraphQL topology API.
