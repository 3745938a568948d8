// Includes dmin/load.hpp and nothing else of dmin, then loads and scores one request: the
// loader, the self-test it runs and the scorer link without the umbrella header.
#include <dmin/load.hpp>

#include "zero_request.hpp"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    return score_zero_request<dmin::Model<>, dmin::Scorer<dmin::Model<>>, dmin::Error>("load.hpp alone", argv[1]);
}
