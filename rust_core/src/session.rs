//! The session state machine in LMDB (reference section 2).
