// Small conversions from policy values to the data plane's config messages, shared by the
// builders of clusters, routes and inbound policies.
#ifndef OUTRIGGER_CONTROLPLANE_MESH_PROTO_VALUES_H_
#define OUTRIGGER_CONTROLPLANE_MESH_PROTO_VALUES_H_

#include "absl/time/time.h"
#include "controlplane/policy/policy_set.h"
#include "google/protobuf/duration.pb.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::controlplane {

void SetDuration(absl::Duration d, google::protobuf::Duration* out);

// A token bucket; members not written in the policy stay unset (the proxies' defaults).
void SetLocalRateLimit(const policy::TokenBucket& bucket, v1::LocalRateLimit* out);

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_MESH_PROTO_VALUES_H_
