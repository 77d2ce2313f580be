//! What every kind of report shares: its index page.

use std::fmt::Write as _;

use std::path::{Path, PathBuf};

use anyhow::Result;

/// Finishes the report page `html` (head and tables already written) with the figures and
/// writes `dir/index.html` atomically.
pub fn write_index(dir: &Path, mut html: String, figures: &[(String, String)]) -> Result<PathBuf> {
    for (f, cap) in figures {
        let _ = write!(
            html,
            "<figure><img src=\"{f}\"><figcaption>{cap}</figcaption></figure>"
        );
    }
    html.push_str("</body></html>\n");
    let index = dir.join("index.html");
    boltzflow_io::write_atomic(&index, |w| w.write_all(html.as_bytes()))?;
    Ok(index)
}
