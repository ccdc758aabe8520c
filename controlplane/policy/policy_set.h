// The mesh policy as the rest of the control plane sees it: plain C++ structs, one per kind of
// document (Service, EndpointSlice, HTTPRoute, Mesh, TrafficPolicy, HTTPFault, LocalRateLimit,
// AuthorizationPolicy, MeshTLS), checked whole and defaulted by the loader (loader.h). Every
// resource remembers where it was written, so later errors can point at the YAML. No protobuf type
// crosses this boundary.
#ifndef OUTRIGGER_CONTROLPLANE_POLICY_POLICY_SET_H_
#define OUTRIGGER_CONTROLPLANE_POLICY_POLICY_SET_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "xds/yaml_proto.h"

namespace outrigger::policy {

// A place in a policy file; line and column are 1-based.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  std::string ToString() const;  // "FILE:LINE:COL"
};

// Names a namespaced resource (ns is "" for cluster-scoped kinds).
struct ObjectKey {
  std::string ns;
  std::string name;

  std::string ToString() const;  // "ns/name", or "name" when cluster-scoped
  friend bool operator<(const ObjectKey& a, const ObjectKey& b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
  }
  friend bool operator==(const ObjectKey& a, const ObjectKey& b) {
    return a.ns == b.ns && a.name == b.name;
  }
};

using Labels = std::map<std::string, std::string>;

// metadata, plus where the document was written.
struct ObjectMeta {
  std::string name;
  std::string ns;  // metadata.namespace: "default" when not written; "" for cluster-scoped kinds
  Labels labels;
  std::map<std::string, std::string> annotations;
  // The document's first line (its apiVersion/kind).
  SourceLocation source;
  // Position of every field of the document, by path ("spec.rules[0].backendRefs[1].weight"),
  // so that errors found later (while building snapshots) can name file:line too.
  std::shared_ptr<const xds::SourceMap> fields;

  ObjectKey key() const { return {ns, name}; }
};

// ---- v1 Service ------------------------------------------------------------------------------

struct ServicePort {
  std::string name;
  int port = 0;
  // Where the workload listens: a number, or (target_port == 0) the container port named
  // target_port_name. Defaults to `port`.
  int target_port = 0;
  std::string target_port_name;
  std::string protocol = "TCP";
  std::string app_protocol;  // "http", "kubernetes.io/h2c", "grpc"...; "" when not given
};

struct Service {
  ObjectMeta meta;
  // Workloads whose labels include all of these. Empty only when EndpointSlices give the
  // endpoints.
  Labels selector;
  std::vector<ServicePort> ports;

  const ServicePort* FindPort(int port) const;
  bool Selects(const Labels& workload_labels) const;
};

// ---- discovery.k8s.io/v1 EndpointSlice --------------------------------------------------------

enum class AddressType { kIPv4, kIPv6 };

struct SliceEndpoint {
  std::string address;  // the first of `addresses`, as kube-proxy uses it
  bool ready = true;
  bool serving = true;
  bool terminating = false;
};

struct SlicePort {
  std::string name;
  int port = 0;
  std::string protocol = "TCP";
  std::string app_protocol;
};

struct EndpointSlice {
  ObjectMeta meta;
  std::string service_name;  // metadata.labels["kubernetes.io/service-name"], same namespace
  AddressType address_type = AddressType::kIPv4;
  std::vector<SliceEndpoint> endpoints;
  std::vector<SlicePort> ports;
};

inline constexpr absl::string_view kServiceNameLabel = "kubernetes.io/service-name";

// ---- gateway.networking.k8s.io/v1 HTTPRoute ---------------------------------------------------

enum class PathMatchType { kExact, kPathPrefix, kRegularExpression };
enum class ValueMatchType { kExact, kRegularExpression };

struct PathMatch {
  PathMatchType type = PathMatchType::kPathPrefix;
  std::string value = "/";
};

// A header or query parameter match.
struct ValueMatch {
  ValueMatchType type = ValueMatchType::kExact;
  std::string name;  // header names are lower-cased
  std::string value;
};

struct RouteMatch {
  PathMatch path;
  std::vector<ValueMatch> headers;
  std::vector<ValueMatch> query_params;
  std::string method;  // "" matches every method
};

struct HeaderValue {
  std::string name;
  std::string value;
};

struct HeaderModifier {
  std::vector<HeaderValue> set;
  std::vector<HeaderValue> add;
  std::vector<std::string> remove;
};

struct PathModifier {
  enum class Type { kReplaceFullPath, kReplacePrefixMatch };
  Type type = Type::kReplaceFullPath;
  std::string value;
};

struct UrlRewrite {
  std::optional<std::string> hostname;
  std::optional<PathModifier> path;
};

struct RequestRedirect {
  std::optional<std::string> scheme;
  std::optional<std::string> hostname;
  std::optional<PathModifier> path;
  std::optional<int> port;
  int status_code = 302;
};

// A Service that receives requests (backendRefs) or copies of them (RequestMirror).
struct BackendRef {
  std::string name;
  std::string ns;  // the route's namespace unless written
  int port = 0;
  uint32_t weight = 1;  // 0..1,000,000; relative to the rule's other backends

  ObjectKey key() const { return {ns, name}; }
};

// Copies of a share of the requests, sent to another Service; the answers are discarded.
struct RequestMirror {
  BackendRef backend_ref;
  std::optional<double> percent;  // 0..100 (from percent or fraction); every request when unset
};

// An ExtensionRef filter naming one of our kinds (HTTPFault or LocalRateLimit) in the route's
// namespace.
struct ExtensionRef {
  std::string kind;  // "HTTPFault" or "LocalRateLimit"
  std::string name;
  std::string ns;

  ObjectKey key() const { return {ns, name}; }
};

struct RouteFilter {
  enum class Type {
    kRequestHeaderModifier,
    kUrlRewrite,
    kRequestRedirect,
    kRequestMirror,
    kExtensionRef
  };
  Type type = Type::kRequestHeaderModifier;
  // The one member that `type` names is set.
  std::optional<HeaderModifier> request_header_modifier;
  std::optional<UrlRewrite> url_rewrite;
  std::optional<RequestRedirect> request_redirect;
  std::optional<RequestMirror> request_mirror;
  std::optional<ExtensionRef> extension_ref;
};

// A rule's retries (GEP-1731 plus our additions). Unset members are left to the proxies'
// defaults.
struct RouteRetry {
  std::vector<uint32_t> codes;       // 400..599
  std::optional<uint32_t> attempts;  // retries after the first try, 0..10
  std::optional<absl::Duration> backoff;
  std::optional<absl::Duration> max_backoff;
  std::vector<std::string> retry_on;  // as written; empty: the default conditions
  bool retry_non_idempotent = false;
  std::optional<uint32_t> max_retry_body_bytes;
};

struct RouteTimeouts {
  // absl::ZeroDuration() means "no timeout", as "0s" does in the Gateway API.
  std::optional<absl::Duration> request;
  std::optional<absl::Duration> backend_request;
};

struct RouteRule {
  std::string name;                 // optional
  std::vector<RouteMatch> matches;  // never empty: defaulted to PathPrefix "/"
  std::vector<RouteFilter> filters;
  std::vector<BackendRef> backend_refs;
  RouteTimeouts timeouts;
  std::optional<RouteRetry> retry;
};

// The Service whose traffic a route takes over (the Gateway API's mesh form).
struct ParentRef {
  std::string name;
  std::string ns;
  std::optional<int> port;  // only this port of the Service; all ports when unset

  ObjectKey key() const { return {ns, name}; }
};

struct HttpRoute {
  ObjectMeta meta;
  std::vector<ParentRef> parent_refs;
  std::vector<std::string> hostnames;  // kept, but not used for mesh routing (as in GAMMA)
  std::vector<RouteRule> rules;
};

// ---- outrigger.dev/v1alpha1 Mesh --------------------------------------------------------------

struct Mesh {
  ObjectMeta meta;  // meta.name is "" when the policy has no Mesh document
  std::string trust_domain = "cluster.local";
  std::optional<absl::Duration> default_timeout;
  absl::Duration endpoint_grace_period = absl::Seconds(10);
  std::string mtls;  // "STRICT", "PERMISSIVE", "DISABLE"; "" when not written (PERMISSIVE)
  bool h2_upgrade = false;  // h2UpgradePolicy: UPGRADE, the default of every Service
};

// ---- outrigger.dev/v1alpha1 TrafficPolicy ----------------------------------------------------
// Every optional member is left unset when not written, so that the proxies' defaults apply.

enum class LoadBalancerType { kRoundRobin, kLeastRequest, kRingHash, kMaglev, kPeakEwma, kRandom };

// What RingHash and Maglev hash.
struct ConsistentHash {
  enum class Source { kHeader, kCookie, kSourceIp };
  Source source = Source::kHeader;
  std::string name;  // the header (lower-cased) or cookie name; "" for kSourceIp
};

struct LoadBalancerSettings {
  std::optional<LoadBalancerType> type;
  std::optional<ConsistentHash> consistent_hash;  // set exactly for RingHash and Maglev
  std::optional<uint32_t> panic_threshold;        // percent
  std::optional<absl::Duration> ewma_decay;       // PeakEWMA only
};

struct ConnectionPoolSettings {
  std::optional<absl::Duration> connect_timeout;
  std::optional<absl::Duration> idle_timeout;
  std::optional<uint32_t> max_idle_connections_per_host;
  // Circuit breakers.
  std::optional<uint32_t> max_connections;
  std::optional<uint32_t> max_pending_requests;
  std::optional<uint32_t> max_requests;
  std::optional<uint32_t> max_retries;
  // h2UpgradePolicy: UPGRADE (true), DO_NOT_UPGRADE (false), DEFAULT or unset: the Mesh's.
  std::optional<bool> h2_upgrade;
};

struct SuccessRateSettings {
  uint32_t minimum_hosts = 5;  // writing successRate turns it on
  std::optional<uint32_t> request_volume;
  std::optional<uint32_t> stdev_factor;  // thousandths of a standard deviation
};

struct OutlierDetectionSettings {
  std::optional<uint32_t> consecutive_5xx_errors;
  std::optional<uint32_t> consecutive_gateway_errors;
  std::optional<absl::Duration> interval;
  std::optional<absl::Duration> base_ejection_time;
  std::optional<absl::Duration> max_ejection_time;
  std::optional<uint32_t> max_ejection_percent;
  std::optional<SuccessRateSettings> success_rate;
};

struct HealthCheckSettings {
  std::string path;
  std::optional<absl::Duration> interval;
  std::optional<absl::Duration> timeout;
  std::optional<uint32_t> unhealthy_threshold;
  std::optional<uint32_t> healthy_threshold;
  std::vector<uint32_t> expected_statuses;  // empty: the proxies' 200-399
  std::string host;                         // "": the cluster's name
};

struct RetryBudgetSettings {
  std::optional<double> percent;
  std::optional<uint32_t> min_retries_per_second;
  std::optional<absl::Duration> ttl;
};

// A token bucket: `max_tokens` requests at once, `tokens_per_fill` more every `fill_interval`.
struct TokenBucket {
  uint32_t max_tokens = 0;
  std::optional<uint32_t> tokens_per_fill;      // default max_tokens
  std::optional<absl::Duration> fill_interval;  // default 1s
};

struct TrafficPolicy {
  ObjectMeta meta;
  std::string target_name;  // a Service in meta.ns

  std::optional<LoadBalancerSettings> load_balancer;
  std::optional<ConnectionPoolSettings> connection_pool;
  std::optional<OutlierDetectionSettings> outlier_detection;
  std::optional<HealthCheckSettings> health_check;
  std::optional<RetryBudgetSettings> retry_budget;
  // Inbound: enforced by the sidecars of the workloads the target Service selects.
  std::optional<TokenBucket> rate_limit;

  ObjectKey target() const { return {meta.ns, target_name}; }
};

// ---- outrigger.dev/v1alpha1 HTTPFault and LocalRateLimit ----------------------------------------
// Referenced from HTTPRoute rules by ExtensionRef filters.

struct FaultDelay {
  absl::Duration fixed_delay;
  double percentage = 100;
};

struct FaultAbort {
  uint32_t http_status = 0;
  double percentage = 100;
};

struct HttpFault {
  ObjectMeta meta;
  std::optional<FaultDelay> delay;  // at least one of delay and abort
  std::optional<FaultAbort> abort;
};

struct LocalRateLimit {
  ObjectMeta meta;
  TokenBucket bucket;
};

// ---- outrigger.dev/v1alpha1 AuthorizationPolicy -----------------------------------------------
// Who may call a workload; enforced by the workload's own sidecar (filters/authz).

enum class AuthorizationAction { kAllow, kDeny };

// The header `name` (lower-cased) is present with one of `values`.
struct HeaderCondition {
  std::string name;
  std::vector<std::string> values;  // never empty
};

// Every non-empty condition must hold; within one, any value may match. No condition at all:
// every request matches. Principals and paths are "exact", "prefix*" ("*suffix" and "*" for
// principals too); as written.
struct AuthorizationRule {
  std::vector<std::string> principals;
  std::vector<std::string> namespaces;
  std::vector<std::string> paths;
  std::vector<std::string> methods;
  std::vector<HeaderCondition> headers;
  std::vector<std::string> not_principals;
  std::vector<std::string> not_paths;
};

struct AuthorizationPolicy {
  ObjectMeta meta;
  // A Service in meta.ns: the workloads it selects. "": every workload of meta.ns.
  std::string target_name;
  AuthorizationAction action = AuthorizationAction::kAllow;
  bool dry_run = false;  // mode DryRun
  // The policy matches a request that matches any rule; without rules it matches nothing (an
  // ALLOW policy without rules allows nothing).
  std::vector<AuthorizationRule> rules;

  ObjectKey target() const { return {meta.ns, target_name}; }
};

// ---- outrigger.dev/v1alpha1 MeshTLS -------------------------------------------------------------
// The inbound mTLS mode of a Service's workloads, or of a whole namespace's (target_name "").
// Precedence: a MeshTLS whose target Service selects the workload, then the namespace's, then
// Mesh.mtls, then PERMISSIVE.

struct MeshTls {
  ObjectMeta meta;
  std::string target_name;  // a Service in meta.ns; "": namespace-wide
  std::string mode;         // "STRICT", "PERMISSIVE" or "DISABLE"

  ObjectKey target() const { return {meta.ns, target_name}; }
};

// ---- the whole policy -------------------------------------------------------------------------

// One loaded document, in the order read: what `outrigger validate` counts.
struct ResourceId {
  std::string kind;  // "Service", "HTTPRoute"...
  ObjectKey key;
  SourceLocation source;
};

struct PolicySet {
  std::map<ObjectKey, Service> services;
  std::map<ObjectKey, EndpointSlice> endpoint_slices;
  std::map<ObjectKey, HttpRoute> http_routes;
  std::map<ObjectKey, TrafficPolicy> traffic_policies;
  std::map<ObjectKey, HttpFault> http_faults;
  std::map<ObjectKey, LocalRateLimit> local_rate_limits;
  std::map<ObjectKey, AuthorizationPolicy> authorization_policies;
  std::map<ObjectKey, MeshTls> mesh_tls;
  Mesh mesh;  // defaults when no Mesh document was given

  std::vector<std::string> files;     // the files read, in order
  std::vector<ResourceId> resources;  // every document, in the order read
  // Changes whenever any document's text changes (a hex hash of them all, in order).
  std::string version;

  const Service* FindService(const ObjectKey& key) const;
  const HttpRoute* FindHttpRoute(const ObjectKey& key) const;
  const HttpFault* FindHttpFault(const ObjectKey& key) const;
  const LocalRateLimit* FindLocalRateLimit(const ObjectKey& key) const;
  // The TrafficPolicy whose targetRef is `service` (a valid policy has at most one).
  const TrafficPolicy* TrafficPolicyFor(const ObjectKey& service) const;
  // The EndpointSlices that give endpoints to `service`.
  std::vector<const EndpointSlice*> EndpointSlicesOf(const ObjectKey& service) const;
  // How many documents of each kind, in the order of the kind table (kind.h); kinds with none
  // are left out.
  std::vector<std::pair<std::string, int>> CountByKind() const;
};

}  // namespace outrigger::policy

#endif  // OUTRIGGER_CONTROLPLANE_POLICY_POLICY_SET_H_
