//! The sample application data (`keel seed`).
