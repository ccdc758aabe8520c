// See worker.h.
#include "proxy/server/worker.h"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "proxy/server/http1_session.h"
#include "proxy/server/span_exporter.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// Spans a worker holds before it drops new ones (the exporter has its own bound).
constexpr size_t kMaxBufferedSpans = 4096;
constexpr size_t kSpanBatch = 256;  // hand over early when this many are waiting
}  // namespace

Worker::Worker(int index, int workers, const TelemetryOptions& telemetry, SpanExporter* exporter)
    : index_(index),
      workers_(std::max(1, workers)),
      access_log_(telemetry.access_log),
      telemetry_(telemetry),
      service_label_(telemetry.ServiceLabel()),
      workload_label_(telemetry.WorkloadLabel()),
      version_label_(telemetry.VersionLabel()),
      exporter_(exporter),
      rng_state_(0x9E3779B97F4A7C15ull ^
                 (static_cast<uint64_t>(
                      std::chrono::steady_clock::now().time_since_epoch().count()) +
                  static_cast<uint64_t>(index) * 0xBF58476D1CE4E5B9ull)) {
  if (!telemetry.service.empty()) {
    source_headers_ = absl::StrCat("x-outrigger-source-workload: ", workload_label_,
                                   "\r\nx-outrigger-source-version: ", version_label_, "\r\n");
  }
}

Worker::~Worker() {
  Stop();
  // Everything that holds I/O objects of ioc_ goes first; then ioc_ itself, which destroys the
  // coroutine frames of sessions still open (their destructors update stats_ and sessions_).
  acceptors_.clear();
  sweep_timer_.reset();
  log_timer_.reset();
  clusters_.CloseAllIdle();
  ioc_.reset();
}

void Worker::Start() {
  ArmSweep();
  thread_ = std::thread([this] {
    ioc_->run();
  });
}

void Worker::Stop() {
  if (!thread_.joinable()) return;
  asio::post(*ioc_, [this] {
    access_log_.Flush();
    FlushSpans();
    ioc_->stop();
  });
  thread_.join();
}

uint64_t Worker::Random() {
  // splitmix64: fast, good enough for load balancing and request ids.
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Worker::ApplySnapshot(std::shared_ptr<const Snapshot> snapshot,
                           std::vector<ListenerSocket> add) {
  snapshot_ = std::move(snapshot);
  clusters_.Update(*snapshot_);
  buckets_.clear();  // a new snapshot's limits have new ids (and start full)
  // Listeners gone from the snapshot stop accepting; their open connections finish normally.
  std::erase_if(acceptors_, [&](const std::unique_ptr<Acceptor>& a) {
    return snapshot_->FindListener(a->name) == nullptr;
  });
  for (ListenerSocket& ls : add) {
    auto a = std::make_unique<Acceptor>();
    a->name = ls.name;
    a->acceptor = std::make_unique<tcp::acceptor>(*ioc_);
    boost::system::error_code ec;
    a->acceptor->assign(ls.ipv6 ? tcp::v6() : tcp::v4(), ls.fd, ec);
    if (ec) {
      LogError("worker ", index_, ": cannot adopt listener ", ls.name, ": ", ec.message());
      continue;
    }
    const auto* lc = snapshot_->FindListener(ls.name);
    stats_.listeners[ls.name].reporter =
        lc && lc->direction == Direction::kInbound ? "destination" : "source";
    AcceptLoop(a.get());
    acceptors_.push_back(std::move(a));
  }
}

void Worker::AcceptLoop(Acceptor* a) {
  a->acceptor->async_accept([this, a](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || draining_) return;
    if (ec) {
      // Out of descriptors and the like: log, back off a little, keep accepting.
      LogWarning("accept on ", a->name, ": ", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(*ioc_, std::chrono::milliseconds(50));
      timer->async_wait([this, a, timer](boost::system::error_code wait_ec) {
        if (!wait_ec) AcceptLoop(a);
      });
      return;
    }
    auto session = std::make_shared<Http1Session>(*this, std::move(socket), a->name);
    Http1Session::Start(std::move(session));
    AcceptLoop(a);
  });
}

void Worker::ArmSweep() {
  // Every 100 ms: expire session deadlines; every second: close stale pooled connections.
  sweep_timer_->expires_after(std::chrono::milliseconds(100));
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    std::vector<Http1Session*> copy(sessions_.begin(), sessions_.end());
    for (Http1Session* s : copy) {
      if (sessions_.contains(s)) s->CheckDeadline(now);
    }
    clusters_.Tick(now, ++sweeps_ % 10 == 0);
    if (sweeps_ % 5 == 0) FlushSpans();
    ArmSweep();
  });
}

bool Worker::TakeToken(const router::RateLimitConfig& config, SteadyTime now) {
  const int64_t now_ns = ToNanos(now);
  auto it = buckets_.find(config.id);
  if (it == buckets_.end()) {
    // This worker's share; rounding up keeps a small limit usable on every worker.
    auto share = [&](uint32_t v) {
      return std::max<uint32_t>(1, (v + workers_ - 1) / static_cast<uint32_t>(workers_));
    };
    it = buckets_
             .emplace(config.id, ratelimit::TokenBucket(
                                     share(config.max_tokens), share(config.tokens_per_fill),
                                     absl::ToInt64Nanoseconds(config.fill_interval), now_ns))
             .first;
  }
  return it->second.TryTake(now_ns);
}

void Worker::BeginDrain() {
  draining_ = true;
  for (auto& a : acceptors_) {
    boost::system::error_code ec;
    a->acceptor->close(ec);
  }
  acceptors_.clear();
  std::vector<Http1Session*> copy(sessions_.begin(), sessions_.end());
  for (Http1Session* s : copy) {
    if (sessions_.contains(s)) s->CloseIfIdle();
  }
  clusters_.CloseAllIdle();
}

bool Worker::ShouldLog(int status, uint16_t flags) {
  if (!access_log_.enabled()) return false;
  const double rate = telemetry_.access_log_sampling;
  if (rate >= 100 || status >= 500 || flags != 0) return true;
  return Chance(rate);
}

bool Worker::Chance(double percent) {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  return static_cast<double>(Random() % 1000000) < percent * 10000;
}

void Worker::RecordSpan(tracing::Span span) {
  if (spans_.size() >= kMaxBufferedSpans) {
    ++stats_.spans_dropped;
    return;
  }
  ++stats_.spans_recorded;
  spans_.push_back(std::move(span));
  if (spans_.size() >= kSpanBatch) FlushSpans();
}

void Worker::FlushSpans() {
  if (exporter_ == nullptr || spans_.empty()) return;
  exporter_->Submit(std::move(spans_));
  spans_ = {};
  spans_.reserve(64);
}

void Worker::LogRequest(const RequestInfo& info) {
  if (!access_log_.Write(info) || log_flush_armed_) return;
  log_flush_armed_ = true;
  log_timer_->expires_after(std::chrono::milliseconds(100));
  log_timer_->async_wait([this](boost::system::error_code) {
    log_flush_armed_ = false;
    access_log_.Flush();
  });
}

void Worker::Register(Http1Session* s) {
  sessions_.insert(s);
  active_sessions_.fetch_add(1, std::memory_order_relaxed);
}

void Worker::Unregister(Http1Session* s) {
  sessions_.erase(s);
  active_sessions_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace outrigger::proxy
