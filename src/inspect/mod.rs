//! Schema and data distribution (`keel inspect`).
