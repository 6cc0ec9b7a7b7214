//! Certificates made for the TLS tests: a CA, a server certificate for 127.0.0.1 and a
//! client certificate, both signed by it; and an unrelated CA for the negative cases.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::peer::{ClientFiles, ServerTls};

/// Files written into one directory.
pub struct Pki {
    pub server: ServerTls,
    pub client: ClientFiles,
    /// A CA that signed nothing here.
    pub other_ca: std::path::PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes the PKI into `dir`.
pub fn make(dir: &Path) -> Pki {
    let (ca_params, ca_key, ca_pem) = ca("tapio test CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let (server_cert, server_key) = leaf(
        &issuer,
        "etcd",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) =
        leaf(&issuer, "tapio", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let (_, _, other_pem) = ca("unrelated CA");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.pem", &ca_pem);
    Pki {
        server: ServerTls {
            cert: write("server.pem", &server_cert),
            key: write("server-key.pem", &server_key),
            client_ca: ca.clone(),
        },
        client: ClientFiles {
            ca,
            cert: write("client.pem", &client_cert),
            key: write("client-key.pem", &client_key),
        },
        other_ca: write("other-ca.pem", &other_pem),
    }
}
