// See cluster_manager.h.
#include "proxy/upstream/cluster_manager.h"

#include <sys/socket.h>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::proxy {

UpstreamConnection::UpstreamConnection(const boost::asio::any_io_executor& ex,
                                       std::shared_ptr<HostPool> h)
    : socket(ex), host(std::move(h)) {}

UpstreamConnection::~UpstreamConnection() {
  if (counted) --host->stats->cx_active;
}

const std::shared_ptr<HostPool>& ClusterState::Pick() {
  if (hosts_.size() == 1) return hosts_[0];
  int64_t total = 0;
  size_t best = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    HostPool& h = *hosts_[i];
    h.current_weight += h.weight;
    total += h.weight;
    if (h.current_weight > hosts_[best]->current_weight) best = i;
  }
  hosts_[best]->current_weight -= total;
  return hosts_[best];
}

std::unique_ptr<UpstreamConnection> HostPool::TakeIdle(SteadyTime now) {
  while (!idle.empty()) {
    std::unique_ptr<UpstreamConnection> c = std::move(idle.back());
    idle.pop_back();
    if (now - c->idle_since >= idle_timeout) continue;
    // The peer may have closed while the connection sat in the pool: a FIN (or stray bytes)
    // shows as readable. Only a connection with nothing to read is safe to reuse.
    char byte;
    ssize_t n = ::recv(c->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return c;
  }
  return nullptr;
}

void HostPool::Release(std::unique_ptr<UpstreamConnection> conn, SteadyTime now) {
  HostPool& host = *conn->host;
  if (host.retired || host.idle.size() >= host.max_idle || conn->in.size() != 0) {
    return;  // closed by the destructor
  }
  conn->idle_since = now;
  host.idle.push_back(std::move(conn));
}

void ClusterState::CloseIdleOlderThan(SteadyTime cutoff) {
  for (auto& h : hosts_) {
    std::erase_if(h->idle, [&](const auto& c) { return c->idle_since <= cutoff; });
  }
}

void ClusterManager::Update(const Snapshot& snapshot) {
  absl::flat_hash_map<std::string, std::unique_ptr<ClusterState>> next;
  for (const auto& [name, config] : snapshot.clusters) {
    auto state = std::make_unique<ClusterState>();
    state->config_ = config;
    state->stats_ = &stats_->clusters[name];
    std::vector<std::shared_ptr<HostPool>> old;
    if (auto it = clusters_.find(name); it != clusters_.end()) old = it->second->hosts_;
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
        host->endpoint = boost::asio::ip::tcp::endpoint(
            boost::asio::ip::make_address(ep.address.ip), ep.address.port);
        host->stats = state->stats_;
      }
      host->weight = ep.weight;
      host->idle_timeout = absl::ToChronoNanoseconds(config->idle_timeout);
      host->connect_timeout = config->connect_timeout;
      host->max_idle = config->max_idle_per_host;
      state->hosts_.push_back(std::move(host));
    }
    for (auto& o : old) {
      if (o) {
        o->retired = true;
        o->idle.clear();
      }
    }
    next.emplace(name, std::move(state));
  }
  for (auto& [name, state] : clusters_) {
    if (next.contains(name)) continue;
    for (auto& h : state->hosts_) {
      h->retired = true;
      h->idle.clear();
    }
  }
  clusters_ = std::move(next);
}

ClusterState* ClusterManager::Find(absl::string_view name) {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : it->second.get();
}

void ClusterManager::SweepIdle(SteadyTime now) {
  for (auto& [name, state] : clusters_) {
    state->CloseIdleOlderThan(now - absl::ToChronoNanoseconds(state->config().idle_timeout));
  }
}

void ClusterManager::CloseAllIdle() {
  for (auto& [name, state] : clusters_) state->CloseIdleOlderThan(SteadyTime::max());
}

}  // namespace outrigger::proxy
