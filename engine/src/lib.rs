//! Strike engine (in progress).
