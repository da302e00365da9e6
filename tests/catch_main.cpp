// The one main() every test binary shares, for Catch2 2 and 3 alike.
#include "catch.hpp"

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
