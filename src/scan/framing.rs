//! Record framing: where a record starts, per kind of file. Defined once and used by the
//! chunk planner (plain files), the decoders (compressed files) and the line readers, which
//! must agree or a chunked read would differ from a whole one.
//!
//! Input: a source (its kind, format and envelope) and a line with the line before it.
//! Output: whether the line starts a record. Invariants: for files of one kind a line decides
//! by itself (an nginx error entry starts at its stamp, an FPM record at its stamp, a slow-log
//! block at its header, every access line is a record); in a mixed file (`LogKind::Mixed`) a
//! line starts a record only if the line before it is complete (no Docker or CRI piece
//! continues into it), it carries a time of its own or of its envelope (so whatever takes
//! "the time of the record before" finds it in the same chunk), and it either comes from
//! another origin than the line before, or is a record start by kind, or is a line of a
//! program that writes no multi-line records into the file (other daemons in syslog).

use crate::model::{Envelope, LogKind, LogSource};
use crate::parse::access::AccessFormat;
use crate::parse::record::{kind_of, RecordKind};
use crate::parse::{fpm, nginx_error};
use crate::unwrap::{unwrap, EnvTime, Unwrapped};
use std::hash::{Hash, Hasher};

/// What the framing rule keeps of a line for the line after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineInfo {
    /// A Docker or CRI piece: the next line of its stream continues it.
    pub partial: bool,
    /// Hash of (envelope, stream, program, host).
    pub origin: u64,
    /// Bytes before the message (for `journalctl`'s indented further lines).
    pub header_len: usize,
    /// Wrapped by syslog or the journal (whose further lines come indented, unwrapped).
    pub syslog: bool,
}

/// NUL runs (a `copytruncate` hole) before a line's content are not part of it.
#[inline]
pub fn strip_nuls(line: &[u8]) -> &[u8] {
    if line.first() == Some(&0) {
        let n = line.iter().take_while(|&&c| c == 0).count();
        &line[n..]
    } else {
        line
    }
}

/// The line's origin and what the next line needs to know of it. An indented line with no
/// envelope after a syslog or journal line is a further line of that message: same origin.
pub fn line_info(u: &Unwrapped, prev: Option<&LineInfo>) -> LineInfo {
    if let (None, Some(p)) = (u.envelope, prev.filter(|p| p.syslog && u.indented > 0)) {
        return LineInfo { partial: false, ..*p };
    }
    let mut h = rustc_hash::FxHasher::default();
    u.envelope.map(|e| e as u8).hash(&mut h);
    u.stream.map(|s| s as u8).hash(&mut h);
    u.name.hash(&mut h);
    u.host.hash(&mut h);
    LineInfo {
        partial: u.partial,
        origin: h.finish(),
        header_len: u.header_len,
        syslog: matches!(u.envelope, Some(Envelope::Syslog | Envelope::Syslog5424 | Envelope::JournalJson)),
    }
}

/// The message of `u`: its inner line, less the indentation of a journal message's further
/// line (`line_info` said it continues the line before).
pub fn message<'b>(u: &Unwrapped<'b>, prev: Option<&LineInfo>) -> &'b [u8] {
    match prev {
        Some(p) if u.envelope.is_none() && p.syslog && u.indented > 0 => &u.inner[u.indented.min(p.header_len)..],
        _ => u.inner,
    }
}

/// A program of a syslog or journal file that writes no nginx or FPM records (cron, sshd,
/// the kernel): its lines never continue an nginx or FPM record.
pub fn foreign(u: &Unwrapped) -> bool {
    let ours = |n: &[u8]| {
        let l = n.to_ascii_lowercase();
        [&b"nginx"[..], b"php", b"fpm", b"openresty"].iter().any(|k| memchr::memmem::find(&l, k).is_some())
    };
    matches!(u.envelope, Some(Envelope::Syslog | Envelope::Syslog5424 | Envelope::JournalJson))
        && !u.name.is_empty()
        && !ours(u.name)
}

/// The mixed-file rule (module doc), given the kind of the line's message.
pub fn starts(prev: Option<&LineInfo>, cur: &LineInfo, u: &Unwrapped, kind: RecordKind) -> bool {
    let Some(p) = prev else { return true };
    let has_time = matches!(
        kind,
        RecordKind::Access | RecordKind::Error | RecordKind::Fpm | RecordKind::SlowHeader | RecordKind::PhpError
    ) || u.time != EnvTime::None;
    !p.partial && has_time && (cur.origin != p.origin || kind.starts() || (kind == RecordKind::Other && foreign(u)))
}

/// The access formats of a source, in the order they are tried.
pub fn access_formats<'a>(src: &LogSource, formats: &'a [AccessFormat]) -> Vec<&'a AccessFormat> {
    src.format.iter().chain(&src.more_formats).filter_map(|&i| formats.get(i)).collect()
}

/// The record-start rule of one source.
pub struct Framing<'a> {
    kind: LogKind,
    /// The access formats of the file, in the order they are tried.
    formats: Vec<&'a AccessFormat>,
    envelope: Option<Envelope>,
}

impl<'a> Framing<'a> {
    pub fn new(src: &LogSource, formats: &'a [AccessFormat]) -> Self {
        Framing { kind: src.kind, formats: access_formats(src, formats), envelope: src.envelope }
    }

    /// Can a record span several lines?
    pub fn multiline(&self) -> bool {
        !matches!(self.kind, LogKind::NginxAccess | LogKind::Unknown)
    }

    /// Does `line` start a record, `prev` being the whole line before it (`None`: not
    /// visible; a mixed file then cuts nowhere)?
    pub fn is_start(&self, prev: Option<&[u8]>, line: &[u8]) -> bool {
        match self.kind {
            LogKind::NginxError => nginx_error::is_entry_start(line),
            LogKind::FpmMaster => fpm::is_stamped(line),
            LogKind::FpmSlow => fpm::is_slow_block_start(line),
            LogKind::PhpError => crate::parse::php_error::is_start(line),
            LogKind::NginxAccess | LogKind::Unknown => true,
            LogKind::Mixed => {
                let Some(prev) = prev else { return false };
                let (mut s1, mut s2) = (Vec::new(), Vec::new());
                let pu = unwrap(strip_nuls(prev), &mut s1, self.envelope);
                // An indented line with no envelope may continue a journal message: what it
                // is depends on the lines before it, which are not visible, so do not cut
                // after it. (Everywhere else the rule below is the readers' own, so a cut
                // here is a record start in a whole read too.)
                if pu.envelope.is_none() && pu.indented > 0 {
                    return false;
                }
                let pinfo = line_info(&pu, None);
                let cu = unwrap(strip_nuls(line), &mut s2, self.envelope);
                let info = line_info(&cu, Some(&pinfo));
                let msg = message(&cu, Some(&pinfo));
                let kind = kind_of(msg, |l| self.formats.iter().any(|f| f.fits(l).is_some()));
                starts(Some(&pinfo), &info, &cu, kind)
            }
        }
    }
}
