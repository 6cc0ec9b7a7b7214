//! The generated types of the `tapio.v1` protocol (`host/proto/tapio/v1/*.proto`).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("tapio.v1");
