//! Sans-IO codec for PostgreSQL's streaming replication frames and the pgoutput logical decoding protocol.
