// The one main() every test binary shares, for Catch2 2 and 3 alike.
// Catch2 2 compiles its runner into the translation unit that defines CATCH_CONFIG_RUNNER;
// Catch2 3 ships it in its library.
#if !__has_include(<catch2/catch_all.hpp>)
#define CATCH_CONFIG_RUNNER
#endif
#include "catch.hpp"

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
