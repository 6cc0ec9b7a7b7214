//! Parsing the header and first question of a DNS message (RFC 1035 section 4.1) from the
//! bytes a record captured. Pure and total: every malformed input gives an error, never a
//! panic.

/// Why a message could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the 12-byte header.
    #[error("dns message shorter than its header ({0} bytes)")]
    Short(usize),
    /// The question runs past the captured bytes or is malformed.
    #[error("dns question malformed or not captured: {0}")]
    Question(&'static str),
}

/// The parts of a DNS message the collector reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub id: u16,
    /// QR bit: a response.
    pub is_response: bool,
    /// OPCODE (0 = QUERY).
    pub opcode: u8,
    /// RCODE (responses).
    pub rcode: u8,
    /// TC bit: truncated (the client should retry over TCP).
    pub truncated: bool,
    /// QDCOUNT.
    pub question_count: u16,
    /// ANCOUNT.
    pub answer_count: u16,
    /// The first question's name, lowercase, without the trailing dot (`example.com`; the
    /// root is `.`). `None` when the message has no question.
    pub name: Option<String>,
    /// The first question's QTYPE.
    pub qtype: u16,
}

const HEADER_LEN: usize = 12;
/// Longest name (RFC 1035: 255 bytes on the wire).
const MAX_NAME: usize = 255;

/// Parses the header and first question.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() < HEADER_LEN {
        return Err(ParseError::Short(bytes.len()));
    }
    let word = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let flags = word(2);
    let mut m = Message {
        id: word(0),
        is_response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0f) as u8,
        rcode: (flags & 0x000f) as u8,
        truncated: flags & 0x0200 != 0,
        question_count: word(4),
        answer_count: word(6),
        name: None,
        qtype: 0,
    };
    if m.question_count == 0 {
        return Ok(m);
    }
    let (name, end) = read_name(bytes, HEADER_LEN)?;
    if end + 4 > bytes.len() {
        return Err(ParseError::Question("type and class not captured"));
    }
    m.qtype = word(end);
    m.name = Some(name);
    Ok(m)
}

/// Reads a name at `at`; returns it and the offset after it (compression pointers are
/// followed, at most 16 of them).
fn read_name(bytes: &[u8], mut at: usize) -> Result<(String, usize), ParseError> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *bytes
            .get(at)
            .ok_or(ParseError::Question("name not captured"))? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let end = end.unwrap_or(at + 1);
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, end));
            }
            0x00 => {
                let label = bytes
                    .get(at + 1..at + 1 + len)
                    .ok_or(ParseError::Question("label not captured"))?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    match b {
                        b'.' | b'\\' => {
                            name.push('\\');
                            name.push(b as char);
                        }
                        0x21..=0x7e => name.push(b.to_ascii_lowercase() as char),
                        _ => name.push_str(&format!("\\{b:03}")),
                    }
                }
                if name.len() > MAX_NAME * 4 {
                    return Err(ParseError::Question("name too long"));
                }
                at += 1 + len;
            }
            0xc0 => {
                let low = *bytes
                    .get(at + 1)
                    .ok_or(ParseError::Question("pointer not captured"))?;
                end.get_or_insert(at + 2);
                jumps += 1;
                if jumps > 16 {
                    return Err(ParseError::Question("compression loop"));
                }
                at = ((len & 0x3f) << 8) | low as usize;
            }
            _ => return Err(ParseError::Question("reserved label type")),
        }
    }
}

/// The mnemonic of a QTYPE (`A`, `AAAA`...) or `TYPE<n>` (RFC 3597).
pub fn type_name(qtype: u16) -> String {
    let known = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return format!("TYPE{qtype}"),
    };
    known.to_string()
}

/// The mnemonic of an RCODE (`NOERROR`, `NXDOMAIN`...) or `RCODE<n>`.
pub fn rcode_name(rcode: u8) -> String {
    let known = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return format!("RCODE{rcode}"),
    };
    known.to_string()
}

/// Builds a query message (for tests and benchmarks): one question, RD set.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&[0; 6]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes()); // IN
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_query() {
        let q = build_query(0xbeef, "Www.Example.COM", 28);
        let m = parse(&q).unwrap();
        assert_eq!(m.id, 0xbeef);
        assert!(!m.is_response);
        assert_eq!(m.name.as_deref(), Some("www.example.com"));
        assert_eq!(type_name(m.qtype), "AAAA");
        assert_eq!(m.question_count, 1);
    }

    #[test]
    fn parses_a_response_with_compressed_answer() {
        let mut r = build_query(7, "a.test", 1);
        r[2] = 0x81; // QR, RD
        r[3] = 0x83; // RA, NXDOMAIN
        r[7] = 1; // ANCOUNT 1
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        let m = parse(&r).unwrap();
        assert!(m.is_response);
        assert_eq!(rcode_name(m.rcode), "NXDOMAIN");
        assert_eq!(m.answer_count, 1);
        assert_eq!(m.name.as_deref(), Some("a.test"));
    }

    #[test]
    fn odd_names_are_escaped_not_trusted() {
        let mut q = build_query(1, "x", 1);
        q[13] = 0; // label byte 'x' -> NUL
        assert_eq!(parse(&q).unwrap().name.as_deref(), Some("\\000"));
        assert_eq!(
            parse(&build_query(1, ".", 2)).unwrap().name.as_deref(),
            Some(".")
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(parse(&[0; 5]), Err(ParseError::Short(5)));
        let q = build_query(1, "abc.example", 1);
        for cut in HEADER_LEN..q.len() {
            assert!(parse(&q[..cut]).is_err(), "cut at {cut}");
        }
        // A pointer to itself.
        let mut looped = q[..HEADER_LEN].to_vec();
        looped.extend_from_slice(&[0xc0, 12]);
        assert_eq!(
            parse(&looped),
            Err(ParseError::Question("compression loop"))
        );
        let mut reserved = q[..HEADER_LEN].to_vec();
        reserved.push(0x80);
        assert!(parse(&reserved).is_err());
        // Every byte string of a few lengths parses or errs without panicking.
        for len in 0..40 {
            for seed in 0..64u8 {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| {
                        seed.wrapping_mul(31)
                            .wrapping_add((i as u8).wrapping_mul(7))
                    })
                    .collect();
                let _ = parse(&bytes);
            }
        }
    }

    #[test]
    fn names_of_types_and_codes() {
        assert_eq!(type_name(1), "A");
        assert_eq!(type_name(4242), "TYPE4242");
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(15), "RCODE15");
    }
}
