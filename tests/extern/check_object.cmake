# cmake -DNM=nm -DOBJECT=service.o -P check_object.cmake
# The service object built with DMIN_EXTERN_TEMPLATES must reference dmin::load and Scorer's entry
# points (constructor, set_user, score) without defining them, else every translation unit still
# compiles the loader and the kernels. (Scorer defines them outside the class so that the compiler,
# at -O3 too, cannot instantiate them for inlining.) Both directions are checked, so a renamed symbol
# fails the test instead of passing it vacuously.
foreach(kind defined undefined)
  execute_process(COMMAND ${NM} -C --${kind}-only ${OBJECT} OUTPUT_VARIABLE syms_${kind} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} --${kind}-only ${OBJECT} failed (${rc})")
  endif()
endforeach()
foreach(sym "dmin::[a-z0-9_]+::Model<[^\n]*> dmin::[a-z0-9_]+::load<" "dmin::Scorer<[^\n]*>::Scorer\\(" "dmin::Scorer<[^\n]*>::set_user\\(" "dmin::Scorer<[^\n]*>::score\\(")
  if(syms_defined MATCHES "${sym}")
    message(FATAL_ERROR "the extern translation unit defines ${CMAKE_MATCH_0}...: it compiled what it should only call")
  endif()
  if(NOT syms_undefined MATCHES "${sym}")
    message(FATAL_ERROR "no undefined reference matching '${sym}' in ${OBJECT}: the object compiles (and inlined) it itself, or the name changed")
  endif()
endforeach()
message(STATUS "load, Scorer's constructor, set_user and score are referenced, not defined, in ${OBJECT}")
