// Run ids: the ones the service makes, and the check that refuses a malformed one by name.
#include <catch2/catch.hpp>

#include "store/uuid.hpp"

using reprise::store::is_uuid;
using reprise::store::new_uuid;

TEST_CASE("a new run id is a version 4 UUID, and is_uuid reads it", "[unit][uuid]") {
  const auto id = new_uuid();
  CHECK(is_uuid(id));
  CHECK(id[14] == '4');
  CHECK(new_uuid() != id);
}

TEST_CASE("is_uuid refuses what PostgreSQL's uuid type would refuse", "[unit][uuid]") {
  CHECK(is_uuid("0F8B2C1E-5D4A-4B6E-9C3D-7A1E2F3B4C5D"));
  CHECK_FALSE(is_uuid(""));
  CHECK_FALSE(is_uuid("not-a-uuid"));
  CHECK_FALSE(is_uuid("0f8b2c1e-5d4a-4b6e-9c3d-7a1e2f3b4c5"));    // one digit short
  CHECK_FALSE(is_uuid("0f8b2c1e-5d4a-4b6e-9c3d-7a1e2f3b4c5dd"));  // one too many
  CHECK_FALSE(is_uuid("0f8b2c1e5d4a-4b6e-9c3d-7a1e2f3b4c5d-"));   // a dash out of place
  CHECK_FALSE(is_uuid("0f8b2c1e-5d4a-4b6e-9c3d-7a1e2f3b4c5g"));   // not hexadecimal
}
