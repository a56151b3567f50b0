# Writes a .cpp holding every sql/NNNN_name.sql as a string, so the server carries its schema.
file(GLOB files "${SQL_DIR}/*.sql")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME_WE)
  string(REGEX MATCH "^[0-9]+" version "${name}")
  math(EXPR version "${version}")
  file(READ "${f}" sql)
  string(APPEND body "    {${version}, \"${name}\", R\"reprise_sql(${sql})reprise_sql\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from history-service/sql by embed_migrations.cmake. Do not edit.
#include \"store/migrations.hpp\"

namespace reprise::store {

const std::vector<Migration>& embedded_migrations() {
  static const std::vector<Migration> migrations = {
${body}  };
  return migrations;
}

}  // namespace reprise::store
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
