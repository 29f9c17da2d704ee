//! The exit-code policy: 0 finished cleanly, 1 fatal (`crate::Error`, mapped by `main`),
//! 2 finished but some input had a problem (an unreadable, corrupt or truncated file, or
//! malformed lines): every problem is in `summary.json` `diagnostics`.

use crate::model::FileStats;
use crate::model::{Diagnostic, Severity};

/// 2 when any input had a problem (unreadable, corrupt, malformed lines), else 0.
pub fn code(diags: &[Diagnostic], stats: &[FileStats]) -> i32 {
    if diags.iter().any(|d| d.severity == Severity::Error) || stats.iter().any(|s| s.malformed > 0) {
        2
    } else {
        0
    }
}
