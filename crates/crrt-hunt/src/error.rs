use std::path::PathBuf;

/// Errors that stop a hunt before it starts. Problems inside evidence or
/// rules are not errors: they are counted and reported, and the hunt goes on.
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    // Not `source`: the message holds the I/O error, and a chain printed
    // whole (`{:#}`) would say it twice.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a file, folder or pipe")]
    NotEvidence { path: PathBuf },
    #[error(
        "-: standard input is a terminal; pipe the evidence in (zcat access.log.gz | crrt hunt - ...)"
    )]
    StdinIsTerminal,
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{path}: no Sigma rule files (.yml, .yaml) found")]
    NoRules { path: PathBuf },
    #[error("{path}: no YARA rule files (.yar, .yara) found")]
    NoYaraRules { path: PathBuf },
    #[error("log-source mapping: {0}")]
    Mapping(String),
    #[error("placeholder values: {0}")]
    Placeholders(String),
}

impl HuntError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            HuntError::NotFound { path }
        } else {
            HuntError::Io {
                path,
                error: source,
            }
        }
    }
}
