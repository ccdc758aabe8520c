// The admin /clusters page: every upstream host with its health (active checks), outlier
// ejection, load and pool, merged from every worker's view. Text lines as Envoy prints them
// ("cluster::host::field::value"), or JSON with ?format=json.
#ifndef OUTRIGGER_PROXY_SERVER_CLUSTER_STATUS_H_
#define OUTRIGGER_PROXY_SERVER_CLUSTER_STATUS_H_

#include <string>
#include <vector>

#include "proxy/upstream/cluster_manager.h"

namespace outrigger::proxy {

// `per_worker[w]` is worker w's list. A host counts as ejected when any worker ejected it
// (each worker runs outlier detection on the traffic it carries).
std::string RenderClusters(const std::vector<std::vector<HostStatus>>& per_worker, bool json);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_CLUSTER_STATUS_H_
