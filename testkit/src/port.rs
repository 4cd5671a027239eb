//! Loopback ports: picking a free one and waiting for a listener.
//!
//! A port found free by binding port 0 can be taken by someone else before the server binds it;
//! callers retry once with a fresh port when the server reports "address in use".

use std::net::{Ipv4Addr, TcpListener};

use crate::error::{Error, Result};

/// The only address servers listen on.
pub const HOST: &str = "127.0.0.1";

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(Error::io("binding 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("reading the bound port"))?
        .port();
    Ok(port)
}

/// Whether a server log excerpt says the port was taken.
pub(crate) fn says_address_in_use(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("addrinuse")
}
