//! Shared vocabulary of the pipeline: sources, time, causes and event rows.
//!
//! Input: nothing; no I/O and no polars here. Output: the types every stage passes on.
//! Invariant: everything in here is plain data with stable string forms.

pub mod cause;
pub mod event;
pub mod meta;
pub mod source;
pub mod span;
pub mod texts;
pub mod time;

pub use cause::{Cause, CauseClass, Confidence};
pub use event::{Diagnostic, ErrorEvent, FpmEvent, FpmKind, Level, Phase, RequestEvent, Severity};
pub use source::{Compression, Envelope, FileStats, LogKind, LogSource, Origin, Sample, Stream};
pub use time::{Ts, Zone};
