# cmake -DOBJDUMP=objdump -DBINARY=prog -DOBJECTS="a.o;b.o" -P check_dispatch_binary.cmake
# What makes a multi-instruction-set program safe on a CPU with fewer features than its best backend
# (cmake/dmin_multi_isa.cmake), checked on the linked program:
#  - no backend object has static constructors (.init_array): they would run AVX code at start-up,
#    before dmin::dispatch::load asks the CPU;
#  - every function of the program that uses ymm or zmm registers belongs to an instruction set's
#    namespace (dmin's avx2_fma/avx512bw..., xsimd's architecture types): no shared inline function
#    (the standard library's, nlohmann/json's, dmin's spec code) kept the copy of a wider backend.
#    And some do, so the check sees the backends.
foreach(obj IN LISTS OBJECTS)
  execute_process(COMMAND ${OBJDUMP} -h ${obj} OUTPUT_VARIABLE sections RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${OBJDUMP} -h ${obj} failed")
  endif()
  if(sections MATCHES "\\.init_array|\\.ctors")
    message(FATAL_ERROR "${obj} has static constructors: they would run before the CPU check")
  endif()
endforeach()
execute_process(COMMAND ${OBJDUMP} -d -C --no-show-raw-insn ${BINARY} OUTPUT_FILE ${BINARY}.disasm RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${OBJDUMP} -d ${BINARY} failed")
endif()
file(STRINGS ${BINARY}.disasm lines REGEX "^[0-9a-f]+ <.*>:$|%[yz]mm")
set(fn "")
set(wide 0)
set(bad "")
foreach(line IN LISTS lines)
  if(line MATCHES "^[0-9a-f]+ <(.*)>:$")
    set(fn "${CMAKE_MATCH_1}")
    set(counted FALSE)
  elseif(NOT counted)
    set(counted TRUE)
    if(fn MATCHES "avx2_fma|avx512bw|avx512dq|avx512cd|avx512f|xsimd::avx|xsimd::fma3")
      math(EXPR wide "${wide} + 1")
    else()
      string(SUBSTRING "${fn}" 0 200 shown)
      string(APPEND bad "\n  ${shown}")
    endif()
  endif()
endforeach()
file(REMOVE ${BINARY}.disasm)
if(bad)
  message(FATAL_ERROR "functions outside any instruction set's namespace use AVX registers:${bad}")
endif()
if(wide EQUAL 0)
  message(FATAL_ERROR "no function of ${BINARY} uses AVX registers: the check does not see the backends")
endif()
message(STATUS "${wide} functions use AVX registers, all in an instruction set's namespace; no static constructors in the backends")
