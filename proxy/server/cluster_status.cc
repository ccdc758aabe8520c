// See cluster_status.h.
#include "proxy/server/cluster_status.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "xds/common/json.h"

namespace outrigger::proxy {

namespace {

struct Merged {
  uint32_t weight = 1;
  bool health_check_failed = false;
  int ejected_workers = 0;
  uint32_t ejections = 0;
  uint64_t active_requests = 0;
  uint64_t idle_connections = 0;
  double ewma_ms = 0;
};

}  // namespace

std::string RenderClusters(const std::vector<std::vector<HostStatus>>& per_worker, bool json) {
  // Sorted by cluster, then host, so the page is stable.
  std::map<std::pair<std::string, std::string>, Merged> hosts;
  for (const auto& worker : per_worker) {
    for (const HostStatus& h : worker) {
      Merged& m = hosts[{h.cluster, h.address}];
      m.weight = h.weight;
      m.health_check_failed = m.health_check_failed || h.health_check_failed;
      m.ejected_workers += h.ejected ? 1 : 0;
      m.ejections += h.ejections;
      m.active_requests += h.active_requests;
      m.idle_connections += h.idle_connections;
      m.ewma_ms = std::max(m.ewma_ms, h.ewma_ms);
    }
  }
  const int workers = static_cast<int>(per_worker.size());
  std::string out;
  if (json) {
    out = "{\"workers\":" + std::to_string(workers) + ",\"hosts\":[";
    bool first = true;
    for (const auto& [key, m] : hosts) {
      if (!first) out += ",";
      first = false;
      out += "{\"cluster\":";
      AppendJsonString(key.first, &out);
      out += ",\"address\":";
      AppendJsonString(key.second, &out);
      absl::StrAppend(&out, ",\"weight\":", m.weight, ",\"healthy\":",
                      m.health_check_failed ? "false" : "true",
                      ",\"ejected_workers\":", m.ejected_workers,
                      ",\"outlier_ejections\":", m.ejections,
                      ",\"rq_active\":", m.active_requests, ",\"cx_idle\":", m.idle_connections,
                      ",\"ewma_ms\":", absl::StrFormat("%.3f", m.ewma_ms), "}");
    }
    out += "]}\n";
    return out;
  }
  for (const auto& [key, m] : hosts) {
    const std::string prefix = absl::StrCat(key.first, "::", key.second, "::");
    std::string flags;
    if (m.health_check_failed) flags = "/failed_active_hc";
    if (m.ejected_workers > 0) absl::StrAppend(&flags, "/failed_outlier_check");
    if (flags.empty()) flags = "healthy";
    absl::StrAppend(&out, prefix, "weight::", m.weight, "\n", prefix, "health_flags::", flags,
                    "\n", prefix, "ejected_workers::", m.ejected_workers, "/", workers, "\n",
                    prefix, "outlier_ejections::", m.ejections, "\n", prefix,
                    "rq_active::", m.active_requests, "\n", prefix,
                    "cx_idle::", m.idle_connections, "\n", prefix,
                    "ewma_ms::", absl::StrFormat("%.3f", m.ewma_ms), "\n");
  }
  return out;
}

}  // namespace outrigger::proxy
