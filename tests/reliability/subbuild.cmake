# Configures and builds the clang reliability sub-build (tests/reliability/CMakeLists.txt); run by CTest
# as "reliability.build":  cmake -DSRC= -DBIN= -DCXX= -DTARGET_FILE= -DMODELS= -DJOBS= -P subbuild.cmake
foreach(v SRC BIN CXX TARGET_FILE MODELS JOBS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "subbuild.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT CXX OR NOT EXISTS "${CXX}")
  message(FATAL_ERROR "clang++ not found: the fuzz and sanitizer sub-build needs clang and the libclang-rt-N-dev of its major version N (run.sh test installs them)")
endif()
string(TIMESTAMP t0 "%s")
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${BIN} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=
          -DDMIN_TESTS_TARGET_FILE=${TARGET_FILE} -DDMIN_FUZZ_MODELS=${MODELS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring ${BIN} failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BIN} -j ${JOBS} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building ${BIN} failed (${rc})")
endif()
string(TIMESTAMP t1 "%s")
math(EXPR dt "${t1} - ${t0}")
message(STATUS "reliability sub-build up to date in ${dt} s: ${BIN}")
