// fixed_rate_client: an open-loop HTTP/1.1 load generator for latency benchmarks (used by
// bench/mtls_compare.py). It sends --rate requests per second in total over --connections
// keep-alive connections, each connection on its own fixed schedule (one request every
// connections/rate seconds, the connections' schedules staggered evenly), whatever the server
// does. A connection waits for a response before it sends the next request (no pipelining), so
// when the server is slow the next requests go out late; their latency is still measured from
// the time they were scheduled, not from when they were sent. That is how wrk2 avoids
// coordinated omission: a stall shows in the percentiles as the time every scheduled request
// waited, not as one slow request.
//
//   fixed_rate_client --target 127.0.0.1:8080 --rate 1000 --duration 15 --connections 8
//                     --body-bytes 1024 --host reviews
//
// Prints one JSON object on stdout: what was scheduled, sent and answered, errors by kind,
// the achieved rate and latency percentiles in milliseconds. It stops scheduling after
// --duration seconds and stops waiting --grace seconds later: a request still unanswered then
// is a timeout, a request scheduled but never sent (the connection was stuck) is "unsent".
// Exit status: 0 when it ran (whatever the figures), 1 when no connection could be opened to
// start with, 2 on a bad command line.
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

ABSL_FLAG(std::string, target, "", "IP:PORT to send the requests to (required).");
ABSL_FLAG(double, rate, 1000, "Requests per second, in total over all connections.");
ABSL_FLAG(double, duration, 10, "Seconds during which requests are scheduled.");
ABSL_FLAG(int, connections, 8, "Keep-alive connections; each sends rate/connections per second.");
ABSL_FLAG(int64_t, body_bytes, 0, "POST a body of this many bytes; 0 sends GET.");
ABSL_FLAG(std::string, host, "", "Host header (default: the target).");
ABSL_FLAG(std::string, path, "/", "Request target (path and query).");
ABSL_FLAG(double, grace, 2, "Seconds to wait for answers after the last scheduled request.");
ABSL_FLAG(std::string, latency_file, "",
          "Also write every answer as CSV: connection, scheduled ms after the start, latency ms, "
          "status (to see when slow answers happened).");

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using asio::awaitable;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr int64_t kMaxBodyBytes = 64 << 20;
constexpr uint64_t kMaxResponseBytes = 64 << 20;

struct Stats {
  int64_t scheduled = 0;       // slots before the end of --duration
  int64_t sent = 0;            // requests written
  int64_t ok = 0;              // 2xx answers
  int64_t non2xx = 0;          // other answers
  int64_t connect_errors = 0;  // a slot whose connection could not be opened
  int64_t io_errors = 0;       // write or read failed (reset, closed, bad response)
  int64_t timeouts = 0;        // sent, no answer by the hard stop
  int64_t unsent = 0;          // scheduled, never sent before the hard stop
  std::string first_error;
  std::vector<double> latencies_ms;  // every answer, 2xx or not, from its scheduled time
  struct Answer {
    int connection;
    double slot_ms;  // after the start
    double latency_ms;
    unsigned status;
  };
  std::vector<Answer> answers;  // only with --latency-file
  Clock::time_point last_answer;

  void Error(absl::string_view what) {
    if (first_error.empty()) first_error = std::string(what);
  }
};

// Everything the connections share. One thread: no locks.
struct Run {
  tcp::endpoint target;
  std::string request;  // serialised once, sent as is
  Clock::duration interval;
  Clock::time_point start;
  Clock::time_point end;  // no slot at or after this
  bool stopping = false;  // the hard stop (end + grace) has passed
  bool keep_answers = false;
  Stats stats;
};

class Connection {
 public:
  Connection(asio::io_context& io, Run& run, int index, Clock::duration offset)
      : run_(run), socket_(io), timer_(io), index_(index), offset_(offset) {}

  // Opens the connection before the schedule starts, so that setting it up is not measured.
  awaitable<bool> Open() {
    auto [ec] = co_await socket_.async_connect(run_.target, kUseTuple);
    if (ec) {
      run_.stats.Error(absl::StrCat("connect: ", ec.message()));
      socket_.close(ec);
      co_return false;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    co_return true;
  }

  awaitable<void> Serve() {
    Stats& stats = run_.stats;
    for (int64_t k = 0;; ++k) {
      const Clock::time_point slot = run_.start + offset_ + k * run_.interval;
      if (slot >= run_.end) break;
      ++stats.scheduled;
      if (run_.stopping) {
        ++stats.unsent;
        continue;
      }
      if (Clock::now() < slot) {
        timer_.expires_at(slot);
        co_await timer_.async_wait(kUseTuple);
        if (run_.stopping) {
          ++stats.unsent;
          continue;
        }
      }
      if (!socket_.is_open()) {
        boost::system::error_code ec;
        socket_ = tcp::socket(socket_.get_executor());
        std::tie(ec) = co_await socket_.async_connect(run_.target, kUseTuple);
        if (run_.stopping) {
          ++stats.unsent;
          continue;
        }
        if (ec) {
          ++stats.connect_errors;
          stats.Error(absl::StrCat("connect: ", ec.message()));
          socket_.close(ec);
          continue;
        }
        socket_.set_option(tcp::no_delay(true), ec);
      }
      co_await Exchange(slot);
    }
  }

  // Closes the socket and the timer: every pending operation of Serve() ends at once.
  void Stop() {
    boost::system::error_code ec;
    timer_.cancel();
    socket_.close(ec);
  }

 private:
  // One request and its answer on the open connection.
  awaitable<void> Exchange(Clock::time_point slot) {
    Stats& stats = run_.stats;
    ++stats.sent;
    auto [wec, written] =
        co_await asio::async_write(socket_, asio::buffer(run_.request), kUseTuple);
    if (wec) {
      Fail(absl::StrCat("write: ", wec.message()));
      co_return;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    auto [rec, read] = co_await http::async_read(socket_, buffer_, parser, kUseTuple);
    if (rec) {
      Fail(absl::StrCat("read: ", rec.message()));
      co_return;
    }
    const Clock::time_point now = Clock::now();
    stats.last_answer = now;
    const double latency_ms = std::chrono::duration<double, std::milli>(now - slot).count();
    stats.latencies_ms.push_back(latency_ms);
    const unsigned status = parser.get().result_int();
    if (run_.keep_answers) {
      stats.answers.push_back({index_,
                               std::chrono::duration<double, std::milli>(slot - run_.start).count(),
                               latency_ms, status});
    }
    if (status >= 200 && status < 300) {
      ++stats.ok;
    } else {
      ++stats.non2xx;
      stats.Error(absl::StrCat("status ", status));
    }
    if (!parser.get().keep_alive()) Reset();
  }

  void Fail(absl::string_view what) {
    if (run_.stopping) {
      ++run_.stats.timeouts;
      run_.stats.Error("no answer before the end of --duration + --grace");
    } else {
      ++run_.stats.io_errors;
      run_.stats.Error(what);
    }
    Reset();
  }

  void Reset() {
    boost::system::error_code ec;
    socket_.close(ec);
    buffer_.clear();
  }

  Run& run_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  const int index_;
  const Clock::duration offset_;
};

std::string BuildRequest(const std::string& host, const std::string& path, int64_t body_bytes) {
  http::request<http::string_body> req{body_bytes > 0 ? http::verb::post : http::verb::get, path,
                                       11};
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "outrigger-fixed-rate-client");
  if (body_bytes > 0) {
    req.set(http::field::content_type, "application/octet-stream");
    req.body().assign(static_cast<size_t>(body_bytes), 'x');
  }
  req.keep_alive(true);
  req.prepare_payload();
  std::ostringstream out;
  out << req;
  return out.str();
}

// The value at quantile q of sorted `v` (nearest rank); 0 when empty.
double Quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void PrintReport(const Run& run, double duration_s, int connections, int64_t body_bytes,
                 double rate) {
  const Stats& s = run.stats;
  std::vector<double> lat = s.latencies_ms;
  std::sort(lat.begin(), lat.end());
  double sum = 0;
  for (double v : lat) sum += v;
  // Answers per second over the schedule (or up to the last answer, if that came later).
  double window_s = duration_s;
  if (!lat.empty()) {
    window_s = std::max(window_s, std::chrono::duration<double>(s.last_answer - run.start).count());
  }
  const int64_t answered = s.ok + s.non2xx;
  const int64_t errors = s.non2xx + s.connect_errors + s.io_errors + s.timeouts + s.unsent;
  std::printf(
      "{\"target\": %s, \"rate\": %.3f, \"duration_s\": %.3f, \"connections\": %d, "
      "\"body_bytes\": %lld, \"scheduled\": %lld, \"sent\": %lld, \"answered\": %lld, "
      "\"ok\": %lld, \"errors\": %lld, \"non2xx\": %lld, \"connect_errors\": %lld, "
      "\"io_errors\": %lld, \"timeouts\": %lld, \"unsent\": %lld, \"first_error\": %s, "
      "\"achieved_rps\": %.3f, \"mean_ms\": %.4f, \"p50_ms\": %.4f, \"p90_ms\": %.4f, "
      "\"p99_ms\": %.4f, \"p999_ms\": %.4f, \"max_ms\": %.4f}\n",
      JsonString(run.target.address().to_string() + ":" + std::to_string(run.target.port()))
          .c_str(),
      rate, duration_s, connections, static_cast<long long>(body_bytes),
      static_cast<long long>(s.scheduled), static_cast<long long>(s.sent),
      static_cast<long long>(answered), static_cast<long long>(s.ok),
      static_cast<long long>(errors), static_cast<long long>(s.non2xx),
      static_cast<long long>(s.connect_errors), static_cast<long long>(s.io_errors),
      static_cast<long long>(s.timeouts), static_cast<long long>(s.unsent),
      JsonString(s.first_error).c_str(), static_cast<double>(answered) / window_s,
      lat.empty() ? 0.0 : sum / static_cast<double>(lat.size()), Quantile(lat, 0.50),
      Quantile(lat, 0.90), Quantile(lat, 0.99), Quantile(lat, 0.999),
      lat.empty() ? 0.0 : lat.back());
  std::fflush(stdout);
}

bool WriteAnswers(const Stats& s, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fprintf(f, "connection,scheduled_ms,latency_ms,status\n");
  for (const Stats::Answer& a : s.answers) {
    std::fprintf(f, "%d,%.3f,%.4f,%u\n", a.connection, a.slot_ms, a.latency_ms, a.status);
  }
  return std::fclose(f) == 0;
}

// "--body-bytes" -> "--body_bytes": flags are documented with dashes; Abseil names cannot hold
// them. Only the name part of arguments starting with "--" is rewritten.
void NormalizeDashes(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* a = argv[i];
    if (a[0] != '-' || a[1] != '-') continue;
    for (char* p = a + 2; *p != '\0' && *p != '='; ++p) {
      if (*p == '-') *p = '_';
    }
  }
}

int Usage(absl::string_view why) {
  std::fprintf(stderr, "fixed_rate_client: %.*s (see --help)\n", static_cast<int>(why.size()),
               why.data());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "open-loop HTTP/1.1 load at a fixed rate; prints latency percentiles as JSON.\n"
      "  fixed_rate_client --target IP:PORT --rate 1000 --duration 10 --connections 8 "
      "[--body-bytes 1024] [--host NAME]");
  NormalizeDashes(argc, argv);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) return Usage(absl::StrCat("unexpected argument '", rest[1], "'"));

  const std::string target = absl::GetFlag(FLAGS_target);
  const double rate = absl::GetFlag(FLAGS_rate);
  const double duration_s = absl::GetFlag(FLAGS_duration);
  const double grace_s = absl::GetFlag(FLAGS_grace);
  const int connections = absl::GetFlag(FLAGS_connections);
  const int64_t body_bytes = absl::GetFlag(FLAGS_body_bytes);
  const std::string path = absl::GetFlag(FLAGS_path);

  const size_t colon = target.rfind(':');
  if (target.empty() || colon == std::string::npos) {
    return Usage(absl::StrCat("--target: '", target, "' is not IP:PORT"));
  }
  boost::system::error_code ec;
  std::string ip = target.substr(0, colon);
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  const asio::ip::address address = asio::ip::make_address(ip, ec);
  uint32_t port = 0;
  if (ec || !absl::SimpleAtoi(target.substr(colon + 1), &port) || port == 0 || port > 65535) {
    return Usage(absl::StrCat("--target: '", target, "' is not IP:PORT"));
  }
  if (!(rate > 0) || rate > 1e6) return Usage("--rate: must be in (0, 1000000]");
  if (!(duration_s > 0) || duration_s > 3600) return Usage("--duration: must be in (0, 3600]");
  if (!(grace_s >= 0) || grace_s > 600) return Usage("--grace: must be in [0, 600]");
  if (connections < 1 || connections > 10000) return Usage("--connections: must be in [1, 10000]");
  if (body_bytes < 0 || body_bytes > kMaxBodyBytes) {
    return Usage(absl::StrCat("--body-bytes: must be in [0, ", kMaxBodyBytes, "]"));
  }
  if (path.empty() || path[0] != '/' || path.find_first_of(" \r\n") != std::string::npos) {
    return Usage("--path: must start with '/' and hold no space or line break");
  }
  const std::string latency_file = absl::GetFlag(FLAGS_latency_file);
  std::string host = absl::GetFlag(FLAGS_host);
  if (host.empty()) host = target;
  if (host.find_first_of("\r\n") != std::string::npos) return Usage("--host: no line breaks");

  asio::io_context io(1);
  Run run;
  run.target = tcp::endpoint(address, static_cast<uint16_t>(port));
  run.request = BuildRequest(host, path, body_bytes);
  run.keep_answers = !latency_file.empty();
  // Each connection's interval is connections/rate; connection i starts i/rate later than
  // connection 0, so that the whole schedule is one request every 1/rate.
  const auto per_request = std::chrono::duration<double>(1.0 / rate);
  run.interval = std::chrono::duration_cast<Clock::duration>(per_request * connections);
  if (run.interval <= Clock::duration::zero()) run.interval = Clock::duration(1);

  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < connections; ++i) {
    conns.push_back(std::make_unique<Connection>(
        io, run, i, std::chrono::duration_cast<Clock::duration>(per_request * i)));
  }

  asio::steady_timer hard_stop(io);
  int opened = 0;
  size_t serving = conns.size();
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        for (auto& c : conns) {
          if (co_await c->Open()) ++opened;
        }
        if (opened == 0) co_return;
        run.start = Clock::now() + std::chrono::milliseconds(5);
        run.end = run.start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(duration_s));
        hard_stop.expires_at(run.end + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(grace_s)));
        hard_stop.async_wait([&](boost::system::error_code wait_ec) {
          if (wait_ec) return;  // every connection finished first
          run.stopping = true;
          for (auto& c : conns) c->Stop();
        });
        for (auto& c : conns) {
          asio::co_spawn(io, c->Serve(), [&](std::exception_ptr) {
            if (--serving == 0) hard_stop.cancel();
          });
        }
      },
      asio::detached);
  io.run();
  if (opened == 0) {
    std::fprintf(stderr, "fixed_rate_client: no connection to %s could be opened: %s\n",
                 target.c_str(), run.stats.first_error.c_str());
    return 1;
  }
  PrintReport(run, duration_s, connections, body_bytes, rate);
  if (!latency_file.empty() && !WriteAnswers(run.stats, latency_file)) {
    std::fprintf(stderr, "fixed_rate_client: --latency-file: cannot write '%s'\n",
                 latency_file.c_str());
    return 1;
  }
  return 0;
}
