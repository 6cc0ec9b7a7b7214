//! Client TLS of the exporters: the server is verified against a CA file when one is
//! configured, else against the system's trust store; mutual TLS adds a client certificate
//! and key. All files are PEM.

use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

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

fn config_error(exporter: &'static str, message: String) -> ExportError {
    ExportError::Config { exporter, message }
}

/// The client certificate and key, when both are set; an error when only one is.
fn identity_files<'a>(
    exporter: &'static str,
    config: &'a TlsConfig,
    field: &str,
) -> Result<Option<(&'a std::path::Path, &'a std::path::Path)>, ExportError> {
    match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        _ => Err(config_error(
            exporter,
            format!("mutual TLS needs both {field}.cert and {field}.key"),
        )),
    }
}

/// The tonic TLS settings for `config` (`field` is its place in the config, for errors),
/// connecting to `host` (the name checked in the server's certificate unless
/// `config.domain` overrides it).
pub fn tonic_client(
    exporter: &'static str,
    config: &TlsConfig,
    field: &str,
    host: &str,
) -> Result<tonic::transport::ClientTlsConfig, ExportError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new()
        .domain_name(config.domain.clone().unwrap_or_else(|| host.to_owned()));
    tls = match &config.ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(exporter, "CA file", ca)?)),
        None => tls.with_native_roots(),
    };
    if let Some((cert, key)) = identity_files(exporter, config, field)? {
        tls = tls.identity(Identity::from_pem(
            read(exporter, "client certificate", cert)?,
            read(exporter, "client key", key)?,
        ));
    }
    Ok(tls)
}

/// A rustls client config for `config` (for the HTTP clients).
pub fn rustls_client(
    exporter: &'static str,
    config: &TlsConfig,
    field: &str,
) -> Result<rustls::ClientConfig, ExportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(exporter, format!("TLS: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca {
        Some(ca) => {
            let pem = read(exporter, "CA file", ca)?;
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                roots
                    .add(cert)
                    .map_err(|e| config_error(exporter, format!("{}: {e}", ca.display())))?;
            }
            if roots.is_empty() {
                return Err(config_error(
                    exporter,
                    format!(
                        "{field}.ca {}: no PEM certificate in the file",
                        ca.display()
                    ),
                ));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(config_error(
                    exporter,
                    format!(
                        "TLS: no usable certificate in the system's trust store ({} errors); set {field}.ca",
                        native.errors.len()
                    ),
                ));
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    match identity_files(exporter, config, field)? {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&read(exporter, "client certificate", cert)?)
                    .flatten()
                    .collect();
            if certs.is_empty() {
                return Err(config_error(
                    exporter,
                    format!("{field}.cert {}: no PEM certificate", cert.display()),
                ));
            }
            let key_der = PrivateKeyDer::from_pem_slice(&read(exporter, "client key", key)?)
                .map_err(|e| {
                    config_error(exporter, format!("{field}.key {}: {e}", key.display()))
                })?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| config_error(exporter, format!("{field}: {e}")))
        }
    }
}
