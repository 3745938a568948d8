// A service translation unit built with DMIN_EXTERN_TEMPLATES: it loads and scores one request while
// the loader and the scorer are compiled in dmin_instances.cpp only. Its object file is checked by
// check_object.cmake: load and Scorer's members are referenced here, not defined.
#include <dmin/dmin.hpp>

#include "../headers/zero_request.hpp"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    return score_zero_request<dmin::Model<>, dmin::Scorer<dmin::Model<>>, dmin::Error>("extern templates", argv[1]);
}
