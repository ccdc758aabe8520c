// The outrigger-echo HTTP/1.1 server: one worker per thread, each with its own io_context and
// SO_REUSEPORT acceptor. The observable behaviour is specified in docs/proxy-contract.md
// ("outrigger-echo: the test application").
#ifndef OUTRIGGER_EXAMPLES_ECHO_ECHO_SERVER_H_
#define OUTRIGGER_EXAMPLES_ECHO_ECHO_SERVER_H_

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace outrigger::echo {

// Longest delay or idle timeout accepted (an hour), so that no deadline overflows the clock.
inline constexpr int64_t kMaxTimerMs = 3'600'000;

// Process-wide settings, from the command line. Query parameters override some of them per request.
struct Options {
  std::string name = "echo";
  std::string version = "v1";
  int64_t delay_ms = 0;
  double fail_rate = 0;
  int fail_status = 503;
  int64_t idle_timeout_ms = 0;  // 0: keep idle connections forever.
  uint64_t seed = 1;
};

// Totals over all workers, for connection ids and GET /_echo/stats.
struct Totals {
  std::atomic<uint64_t> next_connection_id{1};
  // Requests other than GET /_echo/stats, so that asking for the stats does not change them.
  std::atomic<uint64_t> requests{0};
  // Connections that carried at least one such request.
  std::atomic<uint64_t> connections{0};
};

// Everything one thread owns. Created in main (which binds the acceptor), then run on its thread.
struct Worker {
  Worker(const Options& options, Totals& totals, uint64_t index);

  boost::asio::io_context io_context{1};
  boost::asio::ip::tcp::acceptor acceptor{io_context};
  const Options& options;
  Totals& totals;
  std::mt19937_64 rng;             // Only for fail_rate draws; seeded so a run can be repeated.
  const std::string echo_headers;  // "x-echo-name: ...\r\nx-echo-version: ...\r\n"
};

// Accepts connections on worker.acceptor and serves each one until the io_context stops.
boost::asio::awaitable<void> AcceptLoop(Worker& worker);

// True when `s` is fit for a response header value (no control characters).
bool IsValidHeaderValue(std::string_view s);

}  // namespace outrigger::echo

#endif  // OUTRIGGER_EXAMPLES_ECHO_ECHO_SERVER_H_
