// See token_bucket.h.
#include "filters/ratelimit/token_bucket.h"
