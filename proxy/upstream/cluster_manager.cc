// See cluster_manager.h.
#include "proxy/upstream/cluster_manager.h"

#include "proxy/upstream/h2_upstream.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::proxy {

int64_t ToNanos(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

namespace {

std::string HealthKey(absl::string_view cluster, const Address& a) {
  return absl::StrCat(cluster, "|", a.ToString());
}

// A worker's share of a cluster-wide limit: at least 1, so a small limit still admits traffic.
uint32_t Share(uint32_t limit, int workers) {
  if (workers <= 1) return limit;
  return std::max<uint32_t>(1, (limit + workers - 1) / workers);
}

}  // namespace

UpstreamConnection::UpstreamConnection(const boost::asio::any_io_executor& ex,
                                       std::shared_ptr<HostPool> h)
    : stream(ex), host(std::move(h)) {}

UpstreamConnection::~UpstreamConnection() {
  if (counted) --host->stats->cx_active;
  if (stream.is_tls()) {
    // Closing without a full TLS shutdown would make OpenSSL drop the session we saved for
    // resumption; say we sent ours (HTTP/1.1 messages are delimited, nothing is truncated).
    SSL* ssl = stream.tls().native_handle();
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
  }
}

namespace {
constexpr std::chrono::milliseconds kFreshIdle{20};
}  // namespace

std::unique_ptr<UpstreamConnection> HostPool::TakeIdle(SteadyTime now) {
  while (!idle.empty()) {
    std::unique_ptr<UpstreamConnection> c = std::move(idle.back());
    idle.pop_back();
    if (now - c->idle_since >= idle_timeout) continue;
    // Back in the pool moments ago (the busy case): not worth a system call. Peers close idle
    // connections after seconds, and a pooled connection found closed is replayed once anyway.
    if (now - c->idle_since < kFreshIdle) return c;
    // The peer may have closed while the connection sat in the pool: a FIN (or stray bytes)
    // shows as readable. Only a connection with nothing to read is safe to reuse.
    char byte;
    ssize_t n = ::recv(c->stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return c;
  }
  return nullptr;
}

void HostPool::Add(SSL_SESSION* session) {
  constexpr size_t kMaxSessions = 16;
  if (tls_sessions.size() >= kMaxSessions) tls_sessions.erase(tls_sessions.begin());  // oldest
  tls_sessions.emplace_back(session, SSL_SESSION_free);
}

void HostPool::Release(std::unique_ptr<UpstreamConnection> conn, SteadyTime now) {
  HostPool& host = *conn->host;
  if (host.retired || host.idle.size() >= host.max_idle || conn->in.size() != 0) {
    return;  // closed by the destructor
  }
  conn->idle_since = now;
  host.idle.push_back(std::move(conn));
}

std::shared_ptr<HostPool> ClusterState::Pick(lb::PickContext ctx) {
  if (panic_) ++stats_->panic;
  lb::LbHost* h = lb_->Pick(ctx);
  if (h == nullptr) return nullptr;
  return static_cast<HostPool*>(h)->shared_from_this();
}

void ClusterState::Refresh() {
  std::vector<lb::LbHost*> eligible;
  int64_t ejected = 0, unhealthy = 0;
  for (auto& h : hosts_) {
    if (h->eligible()) eligible.push_back(h.get());
    ejected += h->outlier.ejected ? 1 : 0;
    unhealthy += h->health_check_failed ? 1 : 0;
  }
  const uint32_t threshold = config_->healthy_panic_threshold;
  panic_ = eligible.empty() ||
           (threshold > 0 && eligible.size() * 100 < threshold * hosts_.size());
  if (panic_) {
    // Too few healthy hosts: spreading load over all of them beats overloading the few.
    eligible.clear();
    for (auto& h : hosts_) eligible.push_back(h.get());
  }
  lb_->Rebuild(eligible);
  stats_->hosts = static_cast<int64_t>(hosts_.size());
  stats_->hosts_ejected = ejected;
  stats_->hosts_unhealthy = unhealthy;
}

void ClusterState::RecordOutcome(HostPool* host, Outcome outcome, int64_t now_ns) {
  if (!outlier_) return;
  if (outlier_->Record(&host->outlier, outcome, outlier_states_, now_ns)) {
    ++stats_->outlier_ejections;
    Refresh();
  }
}

void ClusterState::Tick(int64_t now_ns) {
  if (outlier_ && outlier_->Tick(outlier_states_, now_ns)) {
    Refresh();
  }
}

void ClusterState::CloseIdleOlderThan(SteadyTime cutoff) {
  for (auto& h : hosts_) {
    std::erase_if(h->idle, [&](const auto& c) { return c->idle_since <= cutoff; });
    // The multiplexed HTTP/2 connection, when no stream used it for as long.
    if (h->h2 && h->h2->idle_since() <= cutoff) {
      h->h2->Close();
      h->h2.reset();
    }
  }
}

void ClusterManager::Update(const Snapshot& snapshot) {
  absl::flat_hash_map<std::string, std::unique_ptr<ClusterState>> next;
  for (const auto& [name, config] : snapshot.clusters) {
    auto state = std::make_unique<ClusterState>();
    state->config_ = config;
    state->stats_ = &stats_->clusters[name];
    const CircuitBreakerConfig& b = config->breakers;
    state->limits_ = {Share(b.max_connections, workers_), Share(b.max_pending_requests, workers_),
                      Share(b.max_requests, workers_), Share(b.max_retries, workers_)};
    std::vector<std::shared_ptr<HostPool>> old;
    ClusterState* previous = nullptr;
    if (auto it = clusters_.find(name); it != clusters_.end()) {
      previous = it->second.get();
      old = previous->hosts_;
    }
    for (const auto& ep : config->endpoints) {
      std::shared_ptr<HostPool> host;
      for (auto& o : old) {
        if (o && o->address == ep.address) {
          host = std::move(o);
          break;
        }
      }
      if (!host) {
        host = std::make_shared<HostPool>();
        host->address = ep.address;
        host->address_text = ep.address.ToString();
        host->key = host->address_text;
        host->endpoint = boost::asio::ip::tcp::endpoint(
            boost::asio::ip::make_address(ep.address.ip), ep.address.port);
        host->stats = state->stats_;
        host->ewma.Start(ToNanos(std::chrono::steady_clock::now()));
        if (auto hc = health_failed_.find(HealthKey(name, ep.address));
            hc != health_failed_.end()) {
          host->health_check_failed = hc->second;
        }
      }
      host->weight = std::max<uint32_t>(1, ep.weight);
      if (auto v = ep.labels.find("version"); v != ep.labels.end()) {
        host->version = v->second;
      } else {
        host->version.clear();
      }
      if (host->spiffe_id != ep.spiffe_id) {
        host->spiffe_id = ep.spiffe_id;
        host->idle.clear();  // connections made for another identity (or plaintext) go
        host->tls_sessions.clear();
      }
      host->idle_timeout = absl::ToChronoNanoseconds(config->idle_timeout);
      host->connect_timeout = config->connect_timeout;
      host->max_idle = config->max_idle_per_host;
      if (!config->health_check) host->health_check_failed = false;
      if (!config->outlier) host->outlier = {};
      state->outlier_states_.push_back(&host->outlier);
      state->hosts_.push_back(std::move(host));
    }
    for (auto& o : old) {
      if (o) {
        o->retired = true;
        if (o->h2) o->h2->Close();  // GOAWAY: its streams finish, no new ones
        o->idle.clear();
      }
    }
    if (config->outlier) state->outlier_.emplace(*config->outlier);
    // The budget keeps its window across updates unless its settings changed.
    const RetryBudgetConfig& rb = config->retry_budget;
    const bool same_budget = previous != nullptr &&
                             previous->config_->retry_budget.percent == rb.percent &&
                             previous->config_->retry_budget.min_per_second == rb.min_per_second &&
                             previous->config_->retry_budget.ttl == rb.ttl;
    state->budget_ = same_budget ? previous->budget_
                                 : std::make_shared<retry::RetryBudget>(
                                       rb.percent, rb.min_per_second / std::max(1, workers_),
                                       absl::ToInt64Nanoseconds(rb.ttl));
    state->lb_ = lb::MakeLoadBalancer(config->lb_policy,
                                      absl::ToInt64Nanoseconds(config->ewma_decay));
    state->Refresh();
    next.emplace(name, std::move(state));
  }
  for (auto& [name, state] : clusters_) {
    if (next.contains(name)) continue;
    for (auto& h : state->hosts_) {
      h->retired = true;
      if (h->h2) h->h2->Close();
      h->idle.clear();
    }
  }
  clusters_ = std::move(next);
}

ClusterState* ClusterManager::Find(absl::string_view name) {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

void ClusterManager::SetHealthCheckFailed(absl::string_view cluster, const Address& host,
                                          bool failed) {
  health_failed_[HealthKey(cluster, host)] = failed;
  ClusterState* state = Find(cluster);
  if (state == nullptr) return;
  for (auto& h : state->hosts_) {
    if (h->address == host && h->health_check_failed != failed) {
      h->health_check_failed = failed;
      state->Refresh();
    }
  }
}

void ClusterManager::Tick(SteadyTime now, bool sweep_idle) {
  const int64_t now_ns = ToNanos(now);
  for (auto& [name, state] : clusters_) {
    if (sweep_idle) {
      state->CloseIdleOlderThan(now - absl::ToChronoNanoseconds(state->config().idle_timeout));
    }
    state->Tick(now_ns);
  }
}

void ClusterManager::CloseAllIdle() {
  for (auto& [name, state] : clusters_) {
    state->CloseIdleOlderThan(SteadyTime::max());
    // HTTP/2 connections: GOAWAY (open streams finish); new streams would open a new one.
    for (auto& h : state->hosts_) {
      if (h->h2) {
        h->h2->Close();
        h->h2.reset();
      }
    }
  }
}

std::vector<HostStatus> ClusterManager::Status(SteadyTime now) const {
  std::vector<HostStatus> out;
  const int64_t now_ns = ToNanos(now);
  for (const auto& [name, state] : clusters_) {
    const int64_t decay = absl::ToInt64Nanoseconds(state->config().ewma_decay);
    for (const auto& h : state->hosts_) {
      HostStatus s;
      s.cluster = name;
      s.address = h->address_text;
      s.weight = h->weight;
      s.health_check_failed = h->health_check_failed;
      s.ejected = h->outlier.ejected;
      s.ejections = h->outlier.ejections;
      s.active_requests = h->active_requests;
      s.idle_connections = h->idle.size();
      s.ewma_ms = h->ewma.Estimate(now_ns, decay) / 1e6;
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace outrigger::proxy
