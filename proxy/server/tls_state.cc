// See tls_state.h.
#include "proxy/server/tls_state.h"

#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "certs/certificate.h"
#include "certs/key.h"
#include "certs/tls_context.h"

namespace outrigger::proxy {

namespace {

// Asio's ssl::context adopts (and frees) the SSL_CTX it is given: hand it its own reference.
std::shared_ptr<boost::asio::ssl::context> Adopt(const certs::SslContextPtr& ctx) {
  SSL_CTX_up_ref(ctx.get());
  return std::make_shared<boost::asio::ssl::context>(ctx.get());
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsState>> MakeTlsState(const std::string& key_pem,
                                                             const std::string& chain_pem,
                                                             const std::string& bundle_pem) {
  auto key = certs::PrivateKey::FromPem(key_pem);
  if (!key.ok()) return key.status();
  auto leaf = certs::Certificate::FromPem(chain_pem);
  if (!leaf.ok()) return leaf.status();
  certs::TlsCredentials creds{chain_pem, &*key, bundle_pem};
  // Inbound: ask every client for a certificate and verify it when sent; PERMISSIVE lets a
  // plaintext client in anyway, and the authorization step decides about TLS clients without
  // one.
  auto server = certs::MakeTlsContext(creds, {.server = true,
                                              .require_peer_certificate = false,
                                              .alpn = {"http/1.1"}});
  if (!server.ok()) return server.status();
  auto client = certs::MakeTlsContext(creds, {.server = false,
                                              .require_peer_certificate = true,
                                              .alpn = {"http/1.1"}});
  if (!client.ok()) return client.status();
  auto state = std::make_shared<TlsState>();
  state->server = Adopt(*server);
  state->client = Adopt(*client);
  state->spiffe_id = leaf->spiffe_id() ? leaf->spiffe_id()->ToString() : "";
  state->not_after = leaf->not_after();
  return std::shared_ptr<const TlsState>(std::move(state));
}

}  // namespace outrigger::proxy
