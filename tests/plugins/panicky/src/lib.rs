//! Test plugin panicky (in progress).
