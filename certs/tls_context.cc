// See tls_context.h. How the contexts behave, for the code that makes connections from them:
//
// - Verification: a client always verifies the server against the bundle. A server with
//   require_peer_certificate asks for a client certificate and fails the handshake without one;
//   without it, it still asks, verifies a certificate if one is sent (so PeerSpiffeId works for
//   clients that have one) and lets clients without one in. Host names are never checked: the
//   identity is the SPIFFE ID, which callers check with PeerSpiffeId after the handshake.
// - Resumption: a server issues TLS 1.3 session tickets (OpenSSL's default), so a returning
//   client skips the certificate exchange. A client context has SSL_SESS_CACHE_CLIENT but no
//   internal store (OpenSSL never looks client sessions up by itself): keep the session with
//   SSL_get1_session() once the connection has read something from the server (TLS 1.3 tickets
//   arrive after the handshake), and hand it to the next connection to the same peer with
//   SSL_set_session() before its handshake. SSL_CTX_sess_set_new_cb is the other way to catch them.
//   Close with SSL_shutdown() (close_notify) before SSL_free(): OpenSSL marks the session of a
//   connection freed without it as not resumable, even in the copies callers hold.
// - ALPN: the server picks the first protocol of its own list that the client offers. With no
//   protocol in common it answers without ALPN rather than failing, and the caller decides.
// - Memory: SSL_MODE_RELEASE_BUFFERS frees the read/write buffers of idle connections.
#include "certs/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "certs/openssl_util.h"

namespace outrigger::certs {
namespace {

using internal::Prefixed;
using internal::SslError;

constexpr unsigned char kSessionIdContext[] = "outrigger-mesh";

// The server's ALPN list (wire format) lives in the SSL_CTX's ex_data, so it is freed with the
// context itself, whoever holds the last reference (every SSL holds one).
void FreeAlpn(void* parent, void* ptr, CRYPTO_EX_DATA* ad, int idx, long argl, void* argp) {
  delete static_cast<std::string*>(ptr);
}

int AlpnIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeAlpn);
  return index;
}

int SelectAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  const auto* server = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(
          &selected, outlen, reinterpret_cast<const unsigned char*>(server->data()),
          static_cast<unsigned int>(server->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

absl::StatusOr<std::string> AlpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (size_t i = 0; i < protocols.size(); ++i) {
    const std::string& p = protocols[i];
    if (p.empty() || p.size() > 255) {
      return absl::InvalidArgumentError(absl::StrCat(
          "alpn[", i, "]: '", absl::CHexEscape(p.substr(0, 64)), "' must be 1 to 255 bytes long"));
    }
    wire.push_back(static_cast<char>(p.size()));
    wire.append(p);
  }
  return wire;
}

}  // namespace

absl::StatusOr<SslContextPtr> MakeTlsContext(const TlsCredentials& credentials,
                                             const TlsOptions& options) {
  if (credentials.key == nullptr || credentials.key->get() == nullptr) {
    return absl::InvalidArgumentError("key: missing");
  }
  absl::StatusOr<std::vector<Certificate>> chain = Certificate::ChainFromPem(credentials.chain_pem);
  if (!chain.ok()) return Prefixed("chain_pem", chain.status());
  absl::StatusOr<std::vector<Certificate>> bundle =
      Certificate::ChainFromPem(credentials.bundle_pem);
  if (!bundle.ok()) return Prefixed("bundle_pem", bundle.status());
  absl::StatusOr<std::string> alpn = AlpnWire(options.alpn);
  if (!alpn.ok()) return alpn.status();

  ERR_clear_error();
  SslContextPtr ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (ctx == nullptr) return SslError(absl::StatusCode::kInternal, "creating the SSL_CTX");
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set1_groups_list(c, "X25519:P-256") != 1) {
    return SslError(absl::StatusCode::kInternal, "setting TLS 1.3 and its groups");
  }
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);

  if (SSL_CTX_use_certificate(c, chain->front().get()) != 1) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    "chain_pem: certificate 1 cannot be used as this side's certificate");
  }
  for (size_t i = 1; i < chain->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(c, (*chain)[i].get()) != 1) {
      return SslError(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("chain_pem: certificate ", i + 1, " cannot be added"));
    }
  }
  if (SSL_CTX_use_PrivateKey(c, credentials.key->get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    return SslError(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("key does not match the certificate (chain_pem certificate 1, ",
                                 chain->front().subject(), ")"));
  }

  X509_STORE* store = SSL_CTX_get_cert_store(c);
  for (size_t i = 0; i < bundle->size(); ++i) {
    if (X509_STORE_add_cert(store, (*bundle)[i].get()) != 1) {
      return SslError(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("bundle_pem: certificate ", i + 1, " cannot be trusted"));
    }
  }

  int verify = SSL_VERIFY_PEER;
  if (options.server && options.require_peer_certificate) {
    verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(c, verify, nullptr);

  if (options.server) {
    // Without it OpenSSL refuses to resume sessions of verified clients.
    if (SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof(kSessionIdContext) - 1) != 1) {
      return SslError(absl::StatusCode::kInternal, "setting the session id context");
    }
    if (!alpn->empty()) {
      auto* protocols = new std::string(*std::move(alpn));
      if (SSL_CTX_set_ex_data(c, AlpnIndex(), protocols) != 1) {
        delete protocols;
        return SslError(absl::StatusCode::kInternal, "storing the ALPN list");
      }
      SSL_CTX_set_alpn_select_cb(c, SelectAlpn, protocols);
    }
  } else {
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    // (SSL_CTX_set_alpn_protos returns 0 on success.)
    if (!alpn->empty() &&
        SSL_CTX_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(alpn->data()),
                                static_cast<unsigned int>(alpn->size())) != 0) {
      return SslError(absl::StatusCode::kInternal, "setting the ALPN list");
    }
  }
  return ctx;
}

absl::StatusOr<SpiffeId> PeerSpiffeId(SSL* ssl) {
  if (ssl == nullptr) return absl::InvalidArgumentError("no connection");
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr) return absl::UnauthenticatedError("the peer sent no certificate");
  const long result = SSL_get_verify_result(ssl);
  if (result != X509_V_OK) {
    return absl::UnauthenticatedError(absl::StrCat("the peer's certificate did not verify: ",
                                                   X509_verify_cert_error_string(result)));
  }
  absl::StatusOr<SpiffeId> id = internal::OneSpiffeId(internal::CertificateUris(peer));
  if (!id.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the peer's certificate has no usable SPIFFE ID: ", id.status().message()));
  }
  return id;
}

}  // namespace outrigger::certs
