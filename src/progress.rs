//! The progress bar of `analyze`: shown on a terminal for inputs over 256 MiB, never in a
//! pipe or with `-q`. Input: whether to show it and the bytes to read. Output: a bar or none.

use std::io::IsTerminal;

/// A bar over `total` bytes, if it is worth showing.
pub fn bar(show: bool, total: u64) -> Option<indicatif::ProgressBar> {
    (show && std::io::stderr().is_terminal() && total > (256 << 20)).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}
