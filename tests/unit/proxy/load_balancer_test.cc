// (to be written)
#include <catch2/catch.hpp>
