// See load_balancer.h.
//
// Every balancer turns the host list into plain arrays in Rebuild() (cumulative weights, a hash
// ring, a Maglev table), so Pick() is a few array reads and never allocates. The only source of
// randomness is PickContext::random: the same context always gives the same pick, which is what
// lets the tests drive the balancers with a seeded generator.
#include "proxy/upstream/load_balancer.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace outrigger::proxy::lb {

// ---------------------------------------------------------------------------------------------
// PeakEwma

void PeakEwma::Observe(int64_t rtt_ns, int64_t now_ns, int64_t decay_ns) {
  const double rtt = static_cast<double>(std::max<int64_t>(rtt_ns, 0));
  if (!sampled_ || rtt > estimate_ns_ || decay_ns <= 0) {
    // The peak: a slow response is believed at once, so a host that turns slow stops getting
    // traffic before its average catches up. The default estimate is a placeholder, not a
    // measurement, so the first sample replaces it whatever the clock's origin; without a decay
    // time there is no memory at all.
    estimate_ns_ = rtt;
  } else {
    // The longer since the last sample, the less the old estimate is worth.
    const double elapsed = static_cast<double>(std::max<int64_t>(now_ns - stamp_ns_, 0));
    const double w = std::exp(-elapsed / static_cast<double>(decay_ns));
    estimate_ns_ = estimate_ns_ * w + rtt * (1.0 - w);
  }
  stamp_ns_ = now_ns;
  sampled_ = true;
}

double PeakEwma::Estimate(int64_t now_ns, int64_t decay_ns) const {
  // An idle host's estimate fades towards zero (as in linkerd2-proxy), so a host that was slow
  // once is tried again eventually instead of being starved for good. The default estimate fades
  // only from Start() (when the host joined): with no start time a host without samples would
  // look infinitely fast and draw every request.
  if ((!sampled_ && !started_) || decay_ns <= 0 || now_ns <= stamp_ns_) return estimate_ns_;
  const double elapsed = static_cast<double>(now_ns - stamp_ns_);
  return estimate_ns_ * std::exp(-elapsed / static_cast<double>(decay_ns));
}

// ---------------------------------------------------------------------------------------------
// HashKey: xxHash64 (https://github.com/Cyan4973/xxHash, XXH64), written out because the hash
// must be the same in every process and on every worker, which rules out absl::Hash (seeded per
// process). Inputs are read little-endian so that big-endian machines agree too.

namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

uint64_t Read64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

uint64_t Read32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * kPrime2;
  acc = std::rotl(acc, 31);
  return acc * kPrime1;
}

uint64_t MergeRound(uint64_t acc, uint64_t val) {
  acc ^= Round(0, val);
  return acc * kPrime1 + kPrime4;
}

uint64_t XxHash64(const char* data, size_t size, uint64_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const unsigned char* const end = p + size;
  uint64_t h;
  if (size >= 32) {
    uint64_t v1 = seed + kPrime1 + kPrime2;
    uint64_t v2 = seed + kPrime2;
    uint64_t v3 = seed;
    uint64_t v4 = seed - kPrime1;
    const unsigned char* const limit = end - 32;
    do {
      v1 = Round(v1, Read64(p));
      v2 = Round(v2, Read64(p + 8));
      v3 = Round(v3, Read64(p + 16));
      v4 = Round(v4, Read64(p + 24));
      p += 32;
    } while (p <= limit);
    h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
    h = MergeRound(h, v1);
    h = MergeRound(h, v2);
    h = MergeRound(h, v3);
    h = MergeRound(h, v4);
  } else {
    h = seed + kPrime5;
  }
  h += static_cast<uint64_t>(size);
  for (; p + 8 <= end; p += 8) {
    h ^= Round(0, Read64(p));
    h = std::rotl(h, 27) * kPrime1 + kPrime4;
  }
  if (p + 4 <= end) {
    h ^= Read32(p) * kPrime1;
    h = std::rotl(h, 23) * kPrime2 + kPrime3;
    p += 4;
  }
  for (; p < end; ++p) {
    h ^= *p * kPrime5;
    h = std::rotl(h, 11) * kPrime1;
  }
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

}  // namespace

uint64_t HashKey(const char* data, size_t size) { return XxHash64(data, size, 0); }

// ---------------------------------------------------------------------------------------------
// Balancers

namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();

// The header promises weight >= 1; a 0 is read as 1 rather than dividing by it.
uint64_t WeightOf(const LbHost& host) { return std::max<uint32_t>(host.weight, 1); }

// Where ctx.avoid is in `hosts`, or kNone when there is nothing to avoid: no avoid, a host that is
// no longer in the set, or a single host (then a retry goes to it again rather than nowhere).
// Linear, but only retries set avoid.
size_t AvoidIndex(const std::vector<LbHost*>& hosts, const PickContext& ctx) {
  if (ctx.avoid == nullptr || hosts.size() < 2) return kNone;
  const auto it = std::find(hosts.begin(), hosts.end(), ctx.avoid);
  return it == hosts.end() ? kNone : static_cast<size_t>(it - hosts.begin());
}

// Several random numbers out of the pick's one random word (SplitMix64: cheap, well mixed, and a
// pure function of ctx.random).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // In [0, bound), bound > 0. The modulo bias (about bound / 2^64) is far below any noise.
  uint64_t Below(uint64_t bound) { return Next() % bound; }

 private:
  uint64_t state_;
};

// The hosts laid end to end on a line, each as long as its weight, so that a uniform point on the
// line is a host drawn in proportion to its weight. Leaving hosts out of a draw (the one to avoid,
// the first of two choices) shortens the line instead of redrawing, so a draw costs one random
// number and one binary search, whatever is excluded.
class WeightedHosts {
 public:
  void Assign(const std::vector<LbHost*>& hosts) {
    hosts_ = hosts;
    cumulative_.clear();
    uniform_ = true;
    uint64_t total = 0;
    for (const LbHost* host : hosts) {
      total += WeightOf(*host);
      cumulative_.push_back(total);
      uniform_ = uniform_ && WeightOf(*host) == WeightOf(*hosts.front());
    }
  }

  const std::vector<LbHost*>& hosts() const { return hosts_; }
  size_t size() const { return hosts_.size(); }
  LbHost* operator[](size_t i) const { return hosts_[i]; }

  // A random index among all but `skip_a` and `skip_b` (kNone: no skip); at least one must remain.
  size_t Draw(Random& random, size_t skip_a = kNone, size_t skip_b = kNone) const {
    if (skip_a == skip_b) skip_b = kNone;
    if (skip_a > skip_b) std::swap(skip_a, skip_b);  // lowest first; kNone sorts last
    uint64_t length = Before(hosts_.size());
    if (skip_a != kNone) length -= Weight(skip_a);
    if (skip_b != kNone) length -= Weight(skip_b);
    uint64_t point = random.Below(length);
    // Back onto the full line: step over each skipped span that lies at or before the point.
    if (skip_a != kNone && point >= Before(skip_a)) point += Weight(skip_a);
    if (skip_b != kNone && point >= Before(skip_b)) point += Weight(skip_b);
    if (uniform_) return static_cast<size_t>(point);
    return std::upper_bound(cumulative_.begin(), cumulative_.end(), point) - cumulative_.begin();
  }

  // One host drawn by weight, avoiding ctx.avoid when possible; nullptr when there are none.
  LbHost* DrawAvoiding(const PickContext& ctx) const {
    if (hosts_.empty()) return nullptr;
    Random random(ctx.random);
    return hosts_[Draw(random, AvoidIndex(hosts_, ctx))];
  }

 private:
  // With equal weights every host counts as 1 long, so the point is the index itself.
  uint64_t Weight(size_t i) const { return uniform_ ? 1 : WeightOf(*hosts_[i]); }
  uint64_t Before(size_t i) const {
    if (uniform_) return i;
    return i == 0 ? 0 : cumulative_[i - 1];
  }

  std::vector<LbHost*> hosts_;
  std::vector<uint64_t> cumulative_;  // cumulative_[i]: total weight of hosts 0..i
  bool uniform_ = true;
};

// Power of two choices (Mitzenmacher): draw two distinct hosts by weight, send to the cheaper
// one. Nearly as good as scanning every host for the cheapest, in O(1), and without the herd that
// the single cheapest host attracts from every worker at once. Ties go to the first drawn, which
// keeps idle hosts' shares proportional to their weights.
template <typename Cost>
LbHost* PickOfTwo(const WeightedHosts& hosts, const PickContext& ctx, Cost cost) {
  if (hosts.size() == 0) return nullptr;
  if (hosts.size() == 1) return hosts[0];
  Random random(ctx.random);
  const size_t avoid = AvoidIndex(hosts.hosts(), ctx);
  const size_t first = hosts.Draw(random, avoid);
  const size_t candidates = hosts.size() - (avoid == kNone ? 0 : 1);
  if (candidates < 2) return hosts[first];
  const size_t second = hosts.Draw(random, avoid, first);
  return cost(*hosts[second]) < cost(*hosts[first]) ? hosts[second] : hosts[first];
}

// Smooth weighted round robin (nginx): every pick adds each host's weight to its current_weight,
// takes the largest and subtracts the total from it. From a fresh start, every window of
// total-weight picks has each host exactly weight times, and heavy hosts are interleaved rather
// than picked in runs. With equal weights (the common case) it is plain rotation, done in O(1) with
// a cursor.
class RoundRobinBalancer final : public LoadBalancer {
 public:
  void Rebuild(const std::vector<LbHost*>& hosts) override {
    hosts_ = hosts;
    equal_weights_ = std::all_of(hosts.begin(), hosts.end(), [&](const LbHost* host) {
      return WeightOf(*host) == WeightOf(*hosts.front());
    });
    // Rebuilds come with every health change, so the state survives them (zeroing it would hand
    // the first pick after each rebuild to the heaviest host). Hosts that left or came back break
    // the algorithm's invariant (current weights sum to zero); re-centring restores it closely
    // enough and keeps stale values from skewing more than a round.
    if (hosts.empty()) return;
    int64_t sum = 0;
    for (const LbHost* host : hosts) sum += host->current_weight;
    const int64_t shift = sum / static_cast<int64_t>(hosts.size());
    for (LbHost* host : hosts) host->current_weight -= shift;
  }

  LbHost* Pick(const PickContext& ctx) override {
    if (hosts_.empty()) return nullptr;
    const size_t avoid = AvoidIndex(hosts_, ctx);
    if (equal_weights_) {
      // Start each worker's rotation at a random host, so workers don't all hit the same first.
      if (!started_) {
        next_ = static_cast<size_t>(ctx.random % hosts_.size());
        started_ = true;
      }
      size_t i = next_++ % hosts_.size();
      if (i == avoid) i = next_++ % hosts_.size();
      return hosts_[i];
    }
    // A host to avoid sits this round out, as nginx does with the peers a request already tried.
    int64_t total = 0;
    LbHost* best = nullptr;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (i == avoid) continue;
      LbHost* host = hosts_[i];
      const auto weight = static_cast<int64_t>(WeightOf(*host));
      host->current_weight += weight;
      total += weight;
      if (best == nullptr || host->current_weight > best->current_weight) best = host;
    }
    best->current_weight -= total;
    return best;
  }

 private:
  std::vector<LbHost*> hosts_;
  bool equal_weights_ = true;
  bool started_ = false;
  size_t next_ = 0;
};

// Least request (Envoy's, with two choices): the host with fewer requests in flight per unit of
// weight.
class LeastRequestBalancer final : public LoadBalancer {
 public:
  void Rebuild(const std::vector<LbHost*>& hosts) override { hosts_.Assign(hosts); }

  LbHost* Pick(const PickContext& ctx) override {
    return PickOfTwo(hosts_, ctx, [](const LbHost& host) {
      return static_cast<double>(host.active_requests) / static_cast<double>(WeightOf(host));
    });
  }

 private:
  WeightedHosts hosts_;
};

// Peak EWMA (linkerd2-proxy): the expected wait at a host, its latency estimate times the
// requests that would be in flight there with this one. Reacts to a host turning slow before any
// request to it fails.
//
// Weights (linkerd2 has none) are read as capacity: a host of weight w serves w requests at once
// without queueing, so the requests count as (active + 1) / w, but never less than one whole
// request. Without that floor an idle light host would cost more than an idle heavy one and
// never win a comparison, so at low concurrency all traffic would go to the heaviest hosts; with
// it, idle hosts tie and the weighted draw shares traffic by weight, and under load the division
// by weight keeps every host's queue in proportion. With equal weights of 1 this is exactly
// linkerd2's cost.
class PeakEwmaBalancer final : public LoadBalancer {
 public:
  explicit PeakEwmaBalancer(int64_t decay_ns) : decay_ns_(decay_ns) {}

  void Rebuild(const std::vector<LbHost*>& hosts) override { hosts_.Assign(hosts); }

  LbHost* Pick(const PickContext& ctx) override {
    return PickOfTwo(hosts_, ctx, [&](const LbHost& host) {
      const double requests =
          (static_cast<double>(host.active_requests) + 1.0) / static_cast<double>(WeightOf(host));
      return host.ewma.Estimate(ctx.now_ns, decay_ns_) * std::max(requests, 1.0);
    });
  }

 private:
  const int64_t decay_ns_;
  WeightedHosts hosts_;
};

class RandomBalancer final : public LoadBalancer {
 public:
  void Rebuild(const std::vector<LbHost*>& hosts) override { hosts_.Assign(hosts); }
  LbHost* Pick(const PickContext& ctx) override { return hosts_.DrawAvoiding(ctx); }

 private:
  WeightedHosts hosts_;
};

// Ketama-style consistent hashing: each host owns 1024 points per unit of weight on a 64-bit
// ring, at HashKey("KEY_i"); a request goes to the owner of the first point at or after its hash.
// A point's position depends only on its host's key, so a host leaving moves exactly the requests
// that were on its points. Requests without a hash are spread at random.
class RingHashBalancer final : public LoadBalancer {
 public:
  static constexpr uint64_t kPointsPerWeight = 1024;
  // Beyond this the points are scaled down in proportion (every host keeps at least one).
  static constexpr uint64_t kMaxPoints = uint64_t{1} << 20;

  void Rebuild(const std::vector<LbHost*>& hosts) override {
    hosts_.Assign(hosts);
    uint64_t wanted = 0;
    for (const LbHost* host : hosts) wanted += kPointsPerWeight * WeightOf(*host);
    const auto points_of = [&](const LbHost& host) {
      const uint64_t points = kPointsPerWeight * WeightOf(host);
      return wanted <= kMaxPoints ? points : std::max<uint64_t>(1, points * kMaxPoints / wanted);
    };
    std::vector<Point> unsorted;
    unsorted.reserve(std::min(wanted, kMaxPoints + hosts.size()));
    std::string name;
    char digits[24];
    for (size_t i = 0; i < hosts.size(); ++i) {
      name.assign(hosts[i]->key);
      name += '_';
      const size_t prefix = name.size();
      for (uint64_t k = 0, points = points_of(*hosts[i]); k < points; ++k) {
        name.resize(prefix);
        name.append(digits, std::to_chars(digits, digits + sizeof(digits), k).ptr);
        unsorted.push_back({HashKey(name.data(), name.size()), static_cast<uint32_t>(i)});
      }
    }
    ring_ = SortByPosition(unsorted);
  }

  LbHost* Pick(const PickContext& ctx) override {
    if (ring_.empty() || !ctx.hash.has_value()) return hosts_.DrawAvoiding(ctx);
    const auto it =
        std::lower_bound(ring_.begin(), ring_.end(), *ctx.hash,
                         [](const Point& point, uint64_t hash) { return point.position < hash; });
    size_t i = it == ring_.end() ? 0 : static_cast<size_t>(it - ring_.begin());
    if (ctx.avoid != nullptr && hosts_.size() > 1) {
      // Clockwise to the next host: the one the request would go to if this one left.
      for (size_t step = 0; step < ring_.size() && hosts_[ring_[i].host] == ctx.avoid; ++step) {
        i = i + 1 == ring_.size() ? 0 : i + 1;
      }
    }
    return hosts_[ring_[i].host];
  }

 private:
  struct Point {
    uint64_t position;
    uint32_t host;  // index in hosts_
  };

  // Positions are uniform hashes, so scattering the points into about one bucket per point by
  // their top bits leaves buckets of a point or two to sort: linear in the ring size, where
  // std::sort would cost N log N on every health change. (Scratch is not kept between rebuilds:
  // a large ring is megabytes per cluster per worker already.)
  static std::vector<Point> SortByPosition(const std::vector<Point>& unsorted) {
    std::vector<Point> sorted(unsorted.size());
    if (unsorted.empty()) return sorted;
    const int bits = std::clamp(static_cast<int>(std::bit_width(unsorted.size())), 1, 24);
    const auto bucket = [bits](const Point& point) { return point.position >> (64 - bits); };
    std::vector<uint32_t> bucket_end((size_t{1} << bits) + 1, 0);
    for (const Point& point : unsorted) ++bucket_end[bucket(point) + 1];
    for (size_t b = 1; b < bucket_end.size(); ++b) bucket_end[b] += bucket_end[b - 1];
    // bucket_end[b] is now where bucket b starts; filling it moves it to where the bucket ends.
    for (const Point& point : unsorted) sorted[bucket_end[bucket(point)]++] = point;
    size_t begin = 0;
    for (size_t b = 0; b + 1 < bucket_end.size(); ++b) {
      const size_t end = bucket_end[b];
      std::sort(sorted.begin() + begin, sorted.begin() + end, [](const Point& x, const Point& y) {
        return x.position != y.position ? x.position < y.position : x.host < y.host;
      });
      begin = end;
    }
    return sorted;
  }

  WeightedHosts hosts_;
  std::vector<Point> ring_;  // by position
};

// Maglev (Eisenbud et al., NSDI 2016): a lookup table of a prime number of slots shared out among
// the hosts. Each host has its own permutation of the slots (an offset and a skip from two hashes
// of its key) and the hosts take turns claiming their next free slot; lookup is one array read.
// A host leaving moves little more than its own share of keys. Weights (as in Envoy): a host takes
// turns in proportion to its weight, its k-th turn coming at "time" k / weight, so with equal
// weights the turns go round as in the paper. Turns at the same time go in the order of the hosts'
// keys, not of the list, so that every proxy builds the same table from the same hosts.
class MaglevBalancer final : public LoadBalancer {
 public:
  static constexpr uint32_t kTableSize = 65537;  // prime, so every skip visits every slot

  void Rebuild(const std::vector<LbHost*>& hosts) override {
    hosts_.Assign(hosts);
    table_.clear();
    if (hosts.empty()) return;
    table_.assign(kTableSize, kEmpty);
    builders_.clear();
    turns_.clear();
    for (size_t i = 0; i < hosts.size(); ++i) {
      const std::string& key = hosts[i]->key;
      const uint64_t offset = XxHash64(key.data(), key.size(), 0) % kTableSize;
      const uint64_t skip = XxHash64(key.data(), key.size(), 1) % (kTableSize - 1) + 1;
      builders_.push_back({offset, skip, WeightOf(*hosts[i]), 0, 0});
      turns_.push_back(static_cast<uint32_t>(i));
    }
    std::sort(turns_.begin(), turns_.end(), [&](uint32_t a, uint32_t b) {
      return hosts[a]->key != hosts[b]->key ? hosts[a]->key < hosts[b]->key : a < b;
    });
    for (uint32_t rank = 0; rank < turns_.size(); ++rank) builders_[turns_[rank]].rank = rank;
    // A min-heap of hosts by the time of their next turn, (turns + 1) / weight; ties by key.
    const auto later = [this](uint32_t a, uint32_t b) {
      const uint64_t time_a = (builders_[a].turns + 1) * builders_[b].weight;
      const uint64_t time_b = (builders_[b].turns + 1) * builders_[a].weight;
      return time_a != time_b ? time_a > time_b : builders_[a].rank > builders_[b].rank;
    };
    std::make_heap(turns_.begin(), turns_.end(), later);
    for (uint32_t filled = 0; filled < kTableSize; ++filled) {
      std::pop_heap(turns_.begin(), turns_.end(), later);
      const uint32_t host = turns_.back();
      Builder& builder = builders_[host];
      // The table is not full, and the permutation visits every slot, so this ends.
      while (table_[builder.next] != kEmpty) {
        builder.next = (builder.next + builder.skip) % kTableSize;
      }
      table_[builder.next] = host;
      ++builder.turns;
      std::push_heap(turns_.begin(), turns_.end(), later);
    }
  }

  LbHost* Pick(const PickContext& ctx) override {
    if (table_.empty() || !ctx.hash.has_value()) return hosts_.DrawAvoiding(ctx);
    const uint64_t slot = *ctx.hash % kTableSize;
    LbHost* host = hosts_[table_[slot]];
    if (ctx.avoid != nullptr && host == ctx.avoid && hosts_.size() > 1) {
      // The following slots belong to hosts in no particular order: the first other one will do.
      for (uint64_t k = 1; k < kTableSize; ++k) {
        LbHost* other = hosts_[table_[(slot + k) % kTableSize]];
        if (other != ctx.avoid) return other;
      }
    }
    return host;
  }

 private:
  static constexpr uint32_t kEmpty = std::numeric_limits<uint32_t>::max();

  struct Builder {
    uint64_t next;  // the next slot of this host's permutation to try (starts at its offset)
    uint64_t skip;
    uint64_t weight;
    uint64_t turns;  // slots claimed so far
    uint32_t rank;   // place in the hosts sorted by key
  };

  WeightedHosts hosts_;
  std::vector<uint32_t> table_;  // slot -> index in hosts_
  // Rebuild scratch, kept for its capacity.
  std::vector<Builder> builders_;
  std::vector<uint32_t> turns_;
};

}  // namespace

std::unique_ptr<LoadBalancer> MakeLoadBalancer(Policy policy, int64_t decay_ns) {
  switch (policy) {
    case Policy::kRoundRobin:
      return std::make_unique<RoundRobinBalancer>();
    case Policy::kLeastRequest:
      return std::make_unique<LeastRequestBalancer>();
    case Policy::kRingHash:
      return std::make_unique<RingHashBalancer>();
    case Policy::kMaglev:
      return std::make_unique<MaglevBalancer>();
    case Policy::kPeakEwma:
      return std::make_unique<PeakEwmaBalancer>(decay_ns);
    case Policy::kRandom:
      return std::make_unique<RandomBalancer>();
  }
  return std::make_unique<RoundRobinBalancer>();  // not reached: every policy is handled above
}

}  // namespace outrigger::proxy::lb
