// The one translation unit that compiles dmin's loader and scorer for the other (extern) ones.
#include <dmin/instantiate.hpp>
