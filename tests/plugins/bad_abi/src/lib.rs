//! Test plugin bad_abi (in progress).
