// The admin server on the main thread: /ready, /metrics (Prometheus), /config_dump,
// /quitquitquit. Small and off the request path, so it uses Beast's ready-made message types.
#ifndef OUTRIGGER_PROXY_SERVER_ADMIN_SERVER_H_
#define OUTRIGGER_PROXY_SERVER_ADMIN_SERVER_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace outrigger::proxy {

class ProxyServer;

class AdminServer {
 public:
  explicit AdminServer(ProxyServer& server);
  // Binds `address` ("IP:PORT", port 0 allowed) and starts serving; returns the bound address.
  absl::StatusOr<std::string> Listen(const std::string& address);
  void Close();

 private:
  boost::asio::awaitable<void> Accept();
  boost::asio::awaitable<void> Serve(boost::asio::ip::tcp::socket socket);

  ProxyServer& server_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_ADMIN_SERVER_H_
