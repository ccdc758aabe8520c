// See tls_state.h.
#include "proxy/server/tls_state.h"

#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "certs/certificate.h"
#include "certs/key.h"
#include "certs/tls_context.h"

namespace outrigger::proxy {

namespace {

int SinkIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Asio's ssl::context adopts (and frees) the SSL_CTX it is given: hand it its own reference.
std::shared_ptr<boost::asio::ssl::context> Adopt(const certs::SslContextPtr& ctx) {
  SSL_CTX_up_ref(ctx.get());
  return std::make_shared<boost::asio::ssl::context>(ctx.get());
}

}  // namespace

void SetTlsSessionSink(SSL* ssl, TlsSessionSink* sink) {
  SSL_set_ex_data(ssl, SinkIndex(), sink);
}

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
  // (A client that negotiates h2 gets HTTP/2: the session recognizes its preface.)
  auto server = certs::MakeTlsContext(creds, {.server = true,
                                              .require_peer_certificate = false,
                                              .alpn = {"h2", "http/1.1"}});
  if (!server.ok()) return server.status();
  auto client = certs::MakeTlsContext(creds, {.server = false,
                                              .require_peer_certificate = true,
                                              .alpn = {"http/1.1"}});
  if (!client.ok()) return client.status();
  // Every session ticket a mesh peer sends is kept by the host it came from (single use each),
  // so that many new connections to it can resume at once.
  SSL_CTX_sess_set_new_cb(client->get(), [](SSL* ssl, SSL_SESSION* session) -> int {
    auto* sink = static_cast<TlsSessionSink*>(SSL_get_ex_data(ssl, SinkIndex()));
    if (sink == nullptr) return 0;
    sink->Add(session);
    return 1;  // we keep the reference
  });
  auto state = std::make_shared<TlsState>();
  state->server = Adopt(*server);
  state->client = Adopt(*client);
  state->spiffe_id = leaf->spiffe_id() ? leaf->spiffe_id()->ToString() : "";
  state->not_after = leaf->not_after();
  return std::shared_ptr<const TlsState>(std::move(state));
}

}  // namespace outrigger::proxy
