// Include Catch2 whichever major version is installed (2 on Debian here, 3 on the GPU machine).
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
