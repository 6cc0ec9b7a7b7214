//! Client TLS of the exporters: a CA (server verification) and, for mutual TLS, a client
//! certificate and key, all PEM files.

use crate::export::config::TlsConfig;
use crate::export::ExportError;

/// Reads a PEM file named in the config.
fn read(
    exporter: &'static str,
    what: &'static str,
    path: &std::path::Path,
) -> Result<Vec<u8>, ExportError> {
    std::fs::read(path).map_err(|source| ExportError::File {
        exporter,
        what,
        path: path.display().to_string(),
        source,
    })
}

/// The tonic TLS settings for `config`, connecting to `host` (the name checked in the
/// server's certificate unless `config.domain` overrides it).
pub fn tonic_client(
    exporter: &'static str,
    config: &TlsConfig,
    host: &str,
) -> Result<tonic::transport::ClientTlsConfig, ExportError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let Some(ca) = &config.ca else {
        return Err(ExportError::Config {
            exporter,
            message: "TLS needs export.grpc.tls.ca (the CA that signed the server's certificate)"
                .into(),
        });
    };
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(exporter, "CA file", ca)?))
        .domain_name(config.domain.clone().unwrap_or_else(|| host.to_owned()));
    match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read(exporter, "client certificate", cert)?,
                read(exporter, "client key", key)?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(ExportError::Config {
                exporter,
                message: "mutual TLS needs both tls.cert and tls.key".into(),
            })
        }
    }
    Ok(tls)
}
