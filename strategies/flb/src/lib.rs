//! FLB strategy (in progress).
