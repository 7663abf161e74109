//! The ingestion pipeline: an ordered list of named steps.
