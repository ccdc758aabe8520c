// See load_balancer.h.
#include "proxy/upstream/load_balancer.h"
