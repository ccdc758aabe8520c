// See outlier_detector.h.
#include "proxy/upstream/outlier_detector.h"
