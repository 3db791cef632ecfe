//! SFTP's field encodings (uint32, uint64, string, ATTRS) read from and
//! written to byte buffers.

use std::fmt;

use super::codes::attr_flags;

/// What is wrong with a packet: each kind of malformed input its own
/// variant, so that tests and logs can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The length field announces more than the server accepts.
    PacketTooLong { length: usize },
    /// A packet of length zero: not even a type byte.
    EmptyPacket,
    /// The stream ended inside a packet.
    TruncatedPacket { expected: usize, got: usize },
    /// The stream ended inside a WRITE's data (streamed into its file).
    ClosedInsideWrite,
    /// A field runs past the end of its packet.
    TruncatedField { field: &'static str },
    /// A string's length runs past the end of its packet.
    StringTooLong { field: &'static str, length: u32 },
    /// An ATTRS structure announces more extended pairs than its packet
    /// could hold.
    TooManyExtendedAttrs { count: u32 },
    /// A path or name with a NUL byte: OpenSSH reads these as C strings and
    /// ends the session.
    NulInString { field: &'static str },
    /// A request other than INIT came before INIT.
    NotInitialized { packet_type: u8 },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::PacketTooLong { length } => write!(
                f,
                "packet of {length} bytes is longer than the {} allowed",
                super::codes::MAX_PACKET
            ),
            WireError::EmptyPacket => write!(f, "empty packet"),
            WireError::TruncatedPacket { expected, got } => write!(
                f,
                "connection closed inside a packet ({got} of {expected} bytes)"
            ),
            WireError::ClosedInsideWrite => write!(f, "connection closed inside a WRITE's data"),
            WireError::TruncatedField { field } => write!(f, "packet ends inside its {field}"),
            WireError::StringTooLong { field, length } => {
                write!(
                    f,
                    "{field} of {length} bytes runs past the end of its packet"
                )
            }
            WireError::TooManyExtendedAttrs { count } => {
                write!(f, "attributes announce {count} extended pairs")
            }
            WireError::NulInString { field } => write!(f, "{field} contains a NUL byte"),
            WireError::NotInitialized { packet_type } => {
                write!(f, "request of type {packet_type} before INIT")
            }
        }
    }
}

/// Reads fields front to back from one packet's bytes.
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError::TruncatedField { field });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, field)?[0])
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, field)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        Ok(u64::from_be_bytes(word))
    }

    pub fn string(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let length = self.u32(field)?;
        let n = length as usize;
        if self.bytes.len() < n {
            return Err(WireError::StringTooLong { field, length });
        }
        self.take(n, field)
    }

    /// A string that is a path or a name: no NUL byte allowed.
    pub fn cstring(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let bytes = self.string(field)?;
        if bytes.contains(&0) {
            return Err(WireError::NulInString { field });
        }
        Ok(bytes)
    }

    pub fn attrs(&mut self) -> Result<Attrs, WireError> {
        let flags = self.u32("attribute flags")?;
        let mut attrs = Attrs::default();
        if flags & attr_flags::SIZE != 0 {
            attrs.size = Some(self.u64("size attribute")?);
        }
        if flags & attr_flags::UIDGID != 0 {
            let uid = self.u32("uid attribute")?;
            let gid = self.u32("gid attribute")?;
            attrs.owner = Some((uid, gid));
        }
        if flags & attr_flags::PERMISSIONS != 0 {
            attrs.permissions = Some(self.u32("permissions attribute")?);
        }
        if flags & attr_flags::ACMODTIME != 0 {
            let atime = self.u32("atime attribute")?;
            let mtime = self.u32("mtime attribute")?;
            attrs.times = Some((atime, mtime));
        }
        if flags & attr_flags::EXTENDED != 0 {
            let count = self.u32("extended attribute count")?;
            // Each pair takes at least 8 bytes: refuse a count the packet
            // cannot hold before looping over it.
            if count as usize > self.remaining() / 8 {
                return Err(WireError::TooManyExtendedAttrs { count });
            }
            for _ in 0..count {
                self.string("extended attribute name")?;
                self.string("extended attribute value")?;
            }
        }
        Ok(attrs)
    }
}

/// SFTP v3 file attributes; `None` where the flags leave a field out.
/// Extended pairs are read and ignored (OpenSSH ignores them too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub owner: Option<(u32, u32)>,
    pub permissions: Option<u32>,
    /// (atime, mtime) in seconds.
    pub times: Option<(u32, u32)>,
}

impl Attrs {
    fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.size.is_some() {
            flags |= attr_flags::SIZE;
        }
        if self.owner.is_some() {
            flags |= attr_flags::UIDGID;
        }
        if self.permissions.is_some() {
            flags |= attr_flags::PERMISSIONS;
        }
        if self.times.is_some() {
            flags |= attr_flags::ACMODTIME;
        }
        flags
    }
}

/// Appends fields to a reply being built.
pub struct Encoder<'a> {
    pub out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.out.push(value);
        self
    }

    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.out.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.out.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn string(&mut self, bytes: &[u8]) -> &mut Self {
        // Every string we send is far below 4 GiB (packets are bounded).
        self.u32(bytes.len() as u32);
        self.out.extend_from_slice(bytes);
        self
    }

    pub fn attrs(&mut self, attrs: &Attrs) -> &mut Self {
        self.u32(attrs.flags());
        if let Some(size) = attrs.size {
            self.u64(size);
        }
        if let Some((uid, gid)) = attrs.owner {
            self.u32(uid).u32(gid);
        }
        if let Some(permissions) = attrs.permissions {
            self.u32(permissions);
        }
        if let Some((atime, mtime)) = attrs.times {
            self.u32(atime).u32(mtime);
        }
        self
    }
}
