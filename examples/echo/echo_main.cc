// outrigger-echo: the HTTP/1.1 application behind the proxy in tests, the demo and the benchmarks
// (contract: docs/proxy-contract.md). This file reads the flags, binds one listening socket per
// thread, prints the bound address, and serves until SIGTERM or SIGINT.
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "echo_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "IP:PORT to listen on; port 0 picks a free port");
ABSL_FLAG(std::string, name, "echo", "name in answers and in the x-echo-name header");
// Abseil owns --version, so the command line's --version is rewritten to --app_version.
ABSL_FLAG(std::string, app_version, "v1",
          "version in answers and in the x-echo-version header (given as --version)");
ABSL_FLAG(int32_t, threads, 1, "worker threads, each with its own SO_REUSEPORT listening socket");
ABSL_FLAG(int64_t, delay_ms, 0, "wait this long before answering (query: delay_ms)");
ABSL_FLAG(double, fail_rate, 0, "answer fail_status with this probability (query: fail_rate)");
ABSL_FLAG(int32_t, fail_status, 503, "status of injected failures (query: fail_status)");
ABSL_FLAG(int64_t, idle_timeout_ms, 0,
          "close a connection idle this long between requests; 0 means never");
ABSL_FLAG(uint64_t, seed, 1, "seed of the fail_rate draws; thread i uses seed + i");

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::string_view kValueFlags[] = {
    "listen",    "name",        "app_version",     "threads", "delay_ms",
    "fail_rate", "fail_status", "idle_timeout_ms", "seed"};

// The contract spells flags with dashes (--delay-ms) but Abseil names cannot hold them: rewrites
// each flag name's '-' to '_', and --version to --app_version. Values are left alone.
std::vector<std::string> NormalizeArgs(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  bool value_next = false;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (value_next) {  // The value of the flag before: "--name --x" names the app "--x".
      value_next = false;
      continue;
    }
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    const size_t start = arg[1] == '-' ? 2 : 1;
    const size_t end = std::min(arg.find('='), arg.size());
    std::replace(arg.begin() + start, arg.begin() + end, '-', '_');
    if (std::string_view(arg).substr(start, end - start) == "version") {
      arg.replace(start, end - start, "app_version");
    }
    const std::string_view name = std::string_view(arg).substr(start, arg.find('=') - start);
    value_next =
        arg.find('=') == std::string::npos &&
        std::find(std::begin(kValueFlags), std::end(kValueFlags), name) != std::end(kValueFlags);
  }
  return args;
}

std::optional<tcp::endpoint> ParseEndpoint(std::string_view s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = s.substr(0, colon);
  const std::string_view port_text = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint16_t port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size()) {
    return std::nullopt;
  }
  boost::system::error_code address_ec;
  const asio::ip::address address = asio::ip::make_address(std::string(host), address_ec);
  if (address_ec) return std::nullopt;
  return tcp::endpoint(address, port);
}

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const std::string ip = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + ip + "]:" + port : ip + ":" + port;
}

// Opens, binds and listens. With several workers every socket sets SO_REUSEPORT on the same port
// so that the kernel spreads new connections across the threads.
boost::system::error_code Listen(tcp::acceptor& acceptor, const tcp::endpoint& endpoint,
                                 bool reuse_port) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  const int one = 1;
  if (!ec && reuse_port &&
      setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    ec.assign(errno, boost::system::system_category());
  }
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "outrigger-echo: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "outrigger-echo --listen IP:PORT --name NAME --version V [--threads N] [--delay-ms N] "
      "[--fail-rate F] [--fail-status S] [--idle-timeout-ms N] [--seed N]");
  std::vector<std::string> args = NormalizeArgs(argc, argv);
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  absl::ParseCommandLine(int(arg_pointers.size()), arg_pointers.data());

  outrigger::echo::Options options;
  options.name = absl::GetFlag(FLAGS_name);
  options.version = absl::GetFlag(FLAGS_app_version);
  options.delay_ms = absl::GetFlag(FLAGS_delay_ms);
  options.fail_rate = absl::GetFlag(FLAGS_fail_rate);
  options.fail_status = absl::GetFlag(FLAGS_fail_status);
  options.idle_timeout_ms = absl::GetFlag(FLAGS_idle_timeout_ms);
  options.seed = absl::GetFlag(FLAGS_seed);
  const int threads = absl::GetFlag(FLAGS_threads);
  const std::optional<tcp::endpoint> endpoint = ParseEndpoint(absl::GetFlag(FLAGS_listen));
  if (!endpoint) return Fail("--listen: want IP:PORT, got '" + absl::GetFlag(FLAGS_listen) + "'");
  if (threads < 1 || threads > 1024) return Fail("--threads: want 1..1024");
  if (options.delay_ms < 0 || options.delay_ms > outrigger::echo::kMaxTimerMs) {
    return Fail("--delay-ms: want 0.." + std::to_string(outrigger::echo::kMaxTimerMs));
  }
  if (!(options.fail_rate >= 0 && options.fail_rate <= 1)) return Fail("--fail-rate: want 0..1");
  if (options.fail_status < 200 || options.fail_status > 599) {
    return Fail("--fail-status: want 200..599");
  }
  if (options.idle_timeout_ms < 0 || options.idle_timeout_ms > outrigger::echo::kMaxTimerMs) {
    return Fail("--idle-timeout-ms: want 0.." + std::to_string(outrigger::echo::kMaxTimerMs));
  }
  if (!outrigger::echo::IsValidHeaderValue(options.name) ||
      !outrigger::echo::IsValidHeaderValue(options.version)) {
    return Fail("--name and --version must not hold control characters");
  }

  // Signals are taken synchronously by main, so every thread started below must block them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  outrigger::echo::Totals totals;
  std::vector<std::unique_ptr<outrigger::echo::Worker>> workers;
  tcp::endpoint bound = *endpoint;
  for (int i = 0; i < threads; ++i) {
    auto& worker = workers.emplace_back(
        std::make_unique<outrigger::echo::Worker>(options, totals, uint64_t(i)));
    // The first socket may ask for port 0; the others must join the port it obtained.
    if (auto ec = Listen(worker->acceptor, bound, threads > 1)) {
      return Fail("cannot listen on " + FormatEndpoint(bound) + ": " + ec.message());
    }
    if (i == 0) bound = worker->acceptor.local_endpoint();
  }
  std::fprintf(stderr, "listening name=echo address=%s\n", FormatEndpoint(bound).c_str());
  std::fflush(stderr);

  std::vector<std::thread> running;
  for (auto& worker : workers) {
    asio::co_spawn(worker->io_context, outrigger::echo::AcceptLoop(*worker),
                   [](std::exception_ptr e) {
                     if (e) std::fprintf(stderr, "outrigger-echo: accept loop failed\n");
                   });
    running.emplace_back([&io_context = worker->io_context] {
      try {
        io_context.run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "outrigger-echo: worker failed: %s\n", e.what());
        std::_Exit(1);
      }
    });
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  for (auto& worker : workers) worker->io_context.stop();
  for (std::thread& thread : running) thread.join();
  return 0;
}
