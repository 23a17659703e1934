//! RESP2: a zero-copy request parser and the reply writers.
//!
//! Requests are arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or inline lines (`GET k\r\n`, as telnet sends). The parser never copies
//! a multibulk argument: it reports byte ranges into the caller's buffer,
//! which the connection turns into `Bytes` slices of one frozen chunk.
//! Declared lengths are checked against [`Limits`] as soon as their header
//! line is complete, so an oversized bulk string or array is refused before
//! any of it is buffered.

use std::fmt;

/// Size limits enforced while parsing.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest bulk string (Redis: `proto-max-bulk-len`, 512 MiB).
    pub max_bulk: usize,
    /// Most elements in one request array.
    pub max_args: usize,
    /// Longest inline request line (Redis: 64 KiB).
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk: 512 << 20,
            max_args: 1 << 20,
            max_inline: 64 << 10,
        }
    }
}

/// A malformed request. The connection answers with the message and
/// closes, as Redis does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// `*` header that is not a number or exceeds the limit.
    MultibulkLength,
    /// `$` header that is not a number or exceeds the limit.
    BulkLength,
    /// An array element that does not start with `$`.
    ExpectedBulk(u8),
    /// An inline line longer than the limit.
    InlineTooBig,
    /// An inline line with an unclosed quote.
    UnbalancedQuotes,
    /// A bulk string not followed by CRLF.
    MissingCrlf,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match self {
            Self::MultibulkLength => f.write_str("invalid multibulk length"),
            Self::BulkLength => f.write_str("invalid bulk length"),
            Self::ExpectedBulk(b) => write!(f, "expected '$', got '{}'", *b as char),
            Self::InlineTooBig => f.write_str("too big inline request"),
            Self::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            Self::MissingCrlf => f.write_str("expected CRLF after bulk string"),
        }
    }
}

/// One argument of a parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Bytes `start..end` of the parsed buffer (multibulk: zero-copy).
    Range(usize, usize),
    /// An inline argument after unquoting.
    Owned(Vec<u8>),
}

/// Longest header line (`*<n>` / `$<n>`) accepted.
const MAX_HEADER: usize = 32;

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

fn memchr_nl(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Parses a header number (`*3`, `$10`): digits with an optional `-`.
fn header_number(line: &[u8]) -> Option<i64> {
    let (neg, digits) = match line.first() {
        Some(b'-') => (true, &line[1..]),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    Some(if neg { -n } else { n })
}

/// Parses one request at the start of `buf`, pushing its arguments onto
/// `out`. Returns `Ok(None)` when more bytes are needed, or
/// `Ok(Some(consumed))`; a blank line or empty array consumes bytes and
/// pushes nothing (the caller skips it).
pub fn parse(buf: &[u8], limits: &Limits, out: &mut Vec<Arg>) -> Result<Option<usize>, ProtoError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits, out),
        Some(_) => parse_inline(buf, limits, out),
    }
}

fn parse_multibulk(
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<Arg>,
) -> Result<Option<usize>, ProtoError> {
    let Some(eol) = find_crlf(buf, 1) else {
        return if buf.len() > MAX_HEADER {
            Err(ProtoError::MultibulkLength)
        } else {
            Ok(None)
        };
    };
    let count = header_number(&buf[1..eol]).ok_or(ProtoError::MultibulkLength)?;
    if count > limits.max_args as i64 {
        return Err(ProtoError::MultibulkLength);
    }
    let mut pos = eol + 2;
    if count <= 0 {
        return Ok(Some(pos));
    }
    let start = out.len();
    for _ in 0..count {
        match parse_bulk(buf, pos, limits) {
            Ok(Some((range, next))) => {
                out.push(range);
                pos = next;
            }
            other => {
                out.truncate(start);
                return other.map(|_| None);
            }
        }
    }
    Ok(Some(pos))
}

/// One `$<len>\r\n<bytes>\r\n` at `pos`.
fn parse_bulk(buf: &[u8], pos: usize, limits: &Limits) -> Result<Option<(Arg, usize)>, ProtoError> {
    let Some(&first) = buf.get(pos) else {
        return Ok(None);
    };
    if first != b'$' {
        return Err(ProtoError::ExpectedBulk(first));
    }
    let Some(eol) = find_crlf(buf, pos + 1) else {
        return if buf.len() - pos > MAX_HEADER {
            Err(ProtoError::BulkLength)
        } else {
            Ok(None)
        };
    };
    let len = header_number(&buf[pos + 1..eol]).ok_or(ProtoError::BulkLength)?;
    if len < 0 || len as u64 > limits.max_bulk as u64 {
        return Err(ProtoError::BulkLength);
    }
    let start = eol + 2;
    let end = start + len as usize;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtoError::MissingCrlf);
    }
    Ok(Some((Arg::Range(start, end), end + 2)))
}

fn parse_inline(
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<Arg>,
) -> Result<Option<usize>, ProtoError> {
    let Some(nl) = memchr_nl(buf) else {
        return if buf.len() > limits.max_inline {
            Err(ProtoError::InlineTooBig)
        } else {
            Ok(None)
        };
    };
    if nl > limits.max_inline {
        return Err(ProtoError::InlineTooBig);
    }
    let line = if nl > 0 && buf[nl - 1] == b'\r' {
        &buf[..nl - 1]
    } else {
        &buf[..nl]
    };
    let args = split_inline(line)?;
    if args.len() > limits.max_args {
        return Err(ProtoError::MultibulkLength);
    }
    out.extend(args.into_iter().map(Arg::Owned));
    Ok(Some(nl + 1))
}

/// Splits an inline line into arguments: whitespace separates; `"..."`
/// takes `\n \r \t \\ \" \xHH` escapes; `'...'` takes `\'`.
pub fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtoError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        let mut arg = Vec::new();
        match line[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let Some(&c) = line.get(i) else {
                        return Err(ProtoError::UnbalancedQuotes);
                    };
                    i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' && i < line.len() {
                        let e = line[i];
                        i += 1;
                        arg.push(match (q, e) {
                            (b'"', b'n') => b'\n',
                            (b'"', b'r') => b'\r',
                            (b'"', b't') => b'\t',
                            (b'"', b'x') if i + 1 < line.len() => {
                                match hex_byte(line[i], line[i + 1]) {
                                    Some(b) => {
                                        i += 2;
                                        b
                                    }
                                    None => b'x',
                                }
                            }
                            (_, e) => e,
                        });
                    } else {
                        arg.push(c);
                    }
                }
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(ProtoError::UnbalancedQuotes);
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
    Ok(args)
}

fn hex_byte(a: u8, b: u8) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(d(a)? << 4 | d(b)?)
}

// ---------------------------------------------------------------------------
// Reply writers.

/// `+OK`.
pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// A simple string.
pub fn simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An error line; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`).
pub fn error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An integer.
pub fn int(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A bulk string.
pub fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(b.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// The nil bulk string.
pub fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// The nil array.
pub fn nil_array(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*-1\r\n");
}

/// An array header of `n` elements.
pub fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Encodes a request as a RESP array (clients, tests, the log's tools).
pub fn encode_request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    array(&mut out, args.len());
    for a in args {
        bulk(&mut out, a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(buf: &[u8], parsed: &[Arg]) -> Vec<Vec<u8>> {
        parsed
            .iter()
            .map(|a| match a {
                Arg::Range(s, e) => buf[*s..*e].to_vec(),
                Arg::Owned(v) => v.clone(),
            })
            .collect()
    }

    /// Bytes consumed and the arguments.
    type Parsed = Option<(usize, Vec<Vec<u8>>)>;

    fn one(buf: &[u8]) -> Result<Parsed, ProtoError> {
        let mut out = Vec::new();
        Ok(parse(buf, &Limits::default(), &mut out)?.map(|n| (n, args_of(buf, &out))))
    }

    #[test]
    fn multibulk_and_its_prefixes() {
        let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let (n, args) = one(req).unwrap().unwrap();
        assert_eq!(n, req.len());
        assert_eq!(
            args,
            vec![b"SET".to_vec(), b"k".to_vec(), b"hello".to_vec()]
        );
        for cut in 0..req.len() {
            assert_eq!(one(&req[..cut]).unwrap(), None, "prefix of {cut} bytes");
        }
    }

    #[test]
    fn inline_with_quotes() {
        let (n, args) = one(b"set  \"a b\\x41\" 'c\\'d'\r\nrest").unwrap().unwrap();
        assert_eq!(n, 23);
        assert_eq!(
            args,
            vec![b"set".to_vec(), b"a bA".to_vec(), b"c'd".to_vec()]
        );
        assert_eq!(one(b"GET x").unwrap(), None);
        assert_eq!(one(b"\r\n").unwrap(), Some((2, vec![])));
        assert_eq!(one(b"get \"x\r\n"), Err(ProtoError::UnbalancedQuotes));
    }

    #[test]
    fn bad_headers_are_refused_before_buffering() {
        let limits = Limits {
            max_bulk: 100,
            max_args: 10,
            max_inline: 16,
        };
        let mut out = Vec::new();
        let mut p = |b: &[u8]| parse(b, &limits, &mut out);
        assert_eq!(p(b"*11\r\n"), Err(ProtoError::MultibulkLength));
        assert_eq!(p(b"*x\r\n"), Err(ProtoError::MultibulkLength));
        assert_eq!(p(b"*1\r\n$101\r\n"), Err(ProtoError::BulkLength));
        assert_eq!(p(b"*1\r\n$-2\r\n"), Err(ProtoError::BulkLength));
        assert_eq!(p(b"*1\r\n:1\r\n"), Err(ProtoError::ExpectedBulk(b':')));
        assert_eq!(p(b"*1\r\n$1\r\nab\r\n"), Err(ProtoError::MissingCrlf));
        assert_eq!(p(&[b'a'; 17]), Err(ProtoError::InlineTooBig));
        assert_eq!(p(&[b'*'; 40]), Err(ProtoError::MultibulkLength));
        assert_eq!(
            p(b"*99999999999999999999\r\n"),
            Err(ProtoError::MultibulkLength)
        );
        assert_eq!(p(b"*0\r\n"), Ok(Some(4)));
        assert_eq!(p(b"*-1\r\n"), Ok(Some(5)));
    }

    /// Random requests, encoded, concatenated and fed in random cuts, parse
    /// back to exactly the same arguments; random bytes never panic and
    /// never make the parser claim more than it was given.
    #[test]
    fn property_split_feeding_and_random_bytes() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let reqs: Vec<Vec<Vec<u8>>> = (0..rng.usize(1..8))
                .map(|_| {
                    (0..rng.usize(1..6))
                        .map(|_| (0..rng.usize(0..40)).map(|_| rng.u8(..)).collect())
                        .collect()
                })
                .collect();
            let mut wire = Vec::new();
            for r in &reqs {
                let refs: Vec<&[u8]> = r.iter().map(Vec::as_slice).collect();
                wire.extend(encode_request(&refs));
            }
            let mut fed = 0;
            let mut start = 0;
            let mut got = Vec::new();
            while fed < wire.len() {
                fed = (fed + rng.usize(1..20)).min(wire.len());
                loop {
                    let mut out = Vec::new();
                    match parse(&wire[start..fed], &Limits::default(), &mut out).unwrap() {
                        Some(n) => {
                            got.push(args_of(&wire[start..fed], &out));
                            start += n;
                        }
                        None => break,
                    }
                }
            }
            assert_eq!(got, reqs);
        }
        for _ in 0..3000 {
            let junk: Vec<u8> = (0..rng.usize(0..64))
                .map(|_| *rng.choice(b"*$\r\n0123-9ab \"'".iter()).unwrap())
                .collect();
            let mut out = Vec::new();
            if let Ok(Some(n)) = parse(&junk, &Limits::default(), &mut out) {
                assert!(n <= junk.len());
                for a in &out {
                    if let Arg::Range(s, e) = a {
                        assert!(s <= e && *e <= n);
                    }
                }
            }
        }
    }
}
