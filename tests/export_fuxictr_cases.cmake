# Exports every FuxiCTR case in DATA with `dmin-export fuxictr --config --expid` into OUT/<case>.safetensors.
# Run by CTest as the fixture "fuxictr_models".
file(MAKE_DIRECTORY ${OUT})
file(GLOB cases LIST_DIRECTORIES true ${DATA}/*)
foreach(dir ${cases})
  if(NOT IS_DIRECTORY ${dir})
    continue()
  endif()
  get_filename_component(name ${dir} NAME)
  file(GLOB ckpt ${dir}/*.model)
  file(READ ${dir}/params.json params)
  string(JSON expid GET ${params} model_id)
  execute_process(
    COMMAND ${PYTHON} ${EXPORTER} fuxictr --checkpoint ${ckpt} --feature-map ${dir}/feature_map.json
            --config ${dir}/model_config.yaml --expid ${expid} -o ${OUT}/${name}.safetensors
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "dmin-export failed for ${name} (exit ${rc})")
  endif()
endforeach()
