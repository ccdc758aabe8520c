// The workload's TLS material as workers use it: a server context for inbound mTLS and a client
// context for mesh upstreams, both built from the current certificate and trust bundle. Built on
// the main thread whenever the certificate rotates and posted to every worker; a connection keeps
// the context it started with, so a rotation never touches a connection in flight.
#ifndef OUTRIGGER_PROXY_SERVER_TLS_STATE_H_
#define OUTRIGGER_PROXY_SERVER_TLS_STATE_H_

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace outrigger::proxy {

// Where a client connection's new TLS session tickets go: the upstream host, which offers each
// once to a later connection. Takes ownership of `session`.
class TlsSessionSink {
 public:
  virtual ~TlsSessionSink() = default;
  virtual void Add(struct ssl_session_st* session) = 0;
};

// Attaches `sink` to a client SSL. (Not SSL_set_app_data: Asio's engine owns that slot and
// deletes what it holds.)
void SetTlsSessionSink(struct ssl_st* ssl, TlsSessionSink* sink);

struct TlsState {
  std::shared_ptr<boost::asio::ssl::context> server;
  std::shared_ptr<boost::asio::ssl::context> client;
  std::string spiffe_id;  // ours
  absl::Time not_after;
};

// From the PEMs the mesh CA returned and the key the proxy made.
absl::StatusOr<std::shared_ptr<const TlsState>> MakeTlsState(const std::string& key_pem,
                                                             const std::string& chain_pem,
                                                             const std::string& bundle_pem);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_TLS_STATE_H_
