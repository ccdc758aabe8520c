// See health_checker.h.
#include "proxy/upstream/health_checker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct HealthChecker::Target {
  std::string cluster;
  Address address;
  std::shared_ptr<const HealthCheckConfig> config;
  std::unique_ptr<asio::steady_timer> timer;
  bool stopped = false;
  bool failed = false;
  uint32_t passes = 0;
  uint32_t failures = 0;
};

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// One check: the status code, or 0 when the host could not be reached or did not answer in time.
asio::awaitable<int> CheckOnce(const HealthChecker::Target& t) {
  const HealthCheckConfig& c = *t.config;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(absl::ToChronoNanoseconds(c.timeout));
  asio::ip::tcp::endpoint ep(asio::ip::make_address(t.address.ip), t.address.port);
  auto [cec] = co_await stream.async_connect(ep, kTuple);
  if (cec) co_return 0;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, c.path, 11};
  req.set(bhttp::field::host, c.host);
  req.set(bhttp::field::user_agent, "outrigger-health-check");
  req.set(bhttp::field::connection, "close");
  auto [wec, wn] = co_await bhttp::async_write(stream, req, kTuple);
  if (wec) co_return 0;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::empty_body> parser;
  parser.header_limit(16 * 1024);
  auto [rec, rn] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
  if (rec) co_return 0;
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  co_return parser.get().result_int();
}

asio::awaitable<void> Loop(std::shared_ptr<HealthChecker::Target> t,
                           HealthChecker::OnChange on_change) {
  // Spread the first checks of many hosts over the interval instead of sending them at once.
  std::minstd_rand rng(std::hash<std::string>{}(absl::StrCat(t->cluster, t->address.ToString())));
  auto first = absl::ToChronoNanoseconds(t->config->interval) * (rng() % 1000) / 10000;
  t->timer->expires_after(first);
  for (;;) {
    (void)co_await t->timer->async_wait(kTuple);
    if (t->stopped) co_return;
    const int status = co_await CheckOnce(*t);
    if (t->stopped) co_return;
    const HealthCheckConfig& c = *t->config;
    if (status != 0 && c.Passes(status)) {
      ++t->passes;
      t->failures = 0;
      if (t->failed && t->passes >= c.healthy_threshold) {
        t->failed = false;
        LogInfo("health check: ", t->address.ToString(), " (", t->cluster, ") is healthy again");
        on_change(t->cluster, t->address, false);
      }
    } else {
      ++t->failures;
      t->passes = 0;
      if (!t->failed && t->failures >= c.unhealthy_threshold) {
        t->failed = true;
        LogWarning("health check: ", t->address.ToString(), " (", t->cluster, ") is unhealthy: ",
                   status == 0 ? std::string("no answer") : absl::StrCat("status ", status));
        on_change(t->cluster, t->address, true);
      }
    }
    t->timer->expires_after(absl::ToChronoNanoseconds(c.interval));
  }
}

}  // namespace

HealthChecker::HealthChecker(asio::io_context& ioc, OnChange on_change)
    : ioc_(ioc), on_change_(std::move(on_change)) {}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Update(const Snapshot& snapshot) {
  absl::flat_hash_map<std::string, std::shared_ptr<Target>> next;
  for (const auto& [name, cluster] : snapshot.clusters) {
    if (!cluster->health_check) continue;
    auto config = std::make_shared<const HealthCheckConfig>(*cluster->health_check);
    for (const auto& ep : cluster->endpoints) {
      const std::string key = absl::StrCat(name, "|", ep.address.ToString());
      if (next.contains(key)) continue;
      if (auto it = targets_.find(key); it != targets_.end()) {
        it->second->config = config;  // read by the loop at its next check
        next.emplace(key, std::move(it->second));
        targets_.erase(it);
        continue;
      }
      auto t = std::make_shared<Target>();
      t->cluster = name;
      t->address = ep.address;
      t->config = config;
      t->timer = std::make_unique<asio::steady_timer>(ioc_);
      next.emplace(key, t);
      asio::co_spawn(ioc_, Loop(t, on_change_), asio::detached);
    }
  }
  Stop();  // what is left in targets_ is no longer checked
  targets_ = std::move(next);
}

void HealthChecker::Stop() {
  for (auto& [key, t] : targets_) {
    t->stopped = true;
    t->timer->cancel();
    // A host that was unhealthy is no longer checked: stop holding it back.
    if (t->failed) on_change_(t->cluster, t->address, false);
  }
  targets_.clear();
}

}  // namespace outrigger::proxy
