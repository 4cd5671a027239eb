//! Decoding of PostgreSQL value representations (text output form, later binary) into pgseam's typed values.
