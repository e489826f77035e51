// Keys: equal scopes and texts give equal keys; any change to a scope field or the text does not.
#include <gtest/gtest.h>

#include <set>

#include "cache_test_util.h"
#include "leanembed/error.h"

namespace leanembed {
namespace {

TEST(CacheKey, SameScopeAndTextGiveTheSameKey) {
  CacheKeyMaker a(test::test_scope()), b(test::test_scope());
  EXPECT_EQ(a.key("hello"), b.key("hello"));
  EXPECT_EQ(a.key("hello").dims, 8);
  EXPECT_NE(a.key("hello"), a.key("hello "));
  EXPECT_NE(a.key(""), a.key(std::string_view("\0", 1)));
}

TEST(CacheKey, EveryScopeFieldChangesTheKey) {
  const CacheScope base = test::test_scope();
  std::vector<CacheScope> variants;
  auto add = [&](auto change) {
    CacheScope s = base;
    change(s);
    variants.push_back(s);
  };
  add([](CacheScope&) {});
  add([](CacheScope& s) { s.model[31] ^= 1; });
  add([](CacheScope& s) { s.dtype = "q8"; });
  add([](CacheScope& s) { s.pooling = "cls"; });
  add([](CacheScope& s) { s.normalize = false; });
  add([](CacheScope& s) { s.max_length = 128; });
  add([](CacheScope& s) { s.dims = 4; });
  add([](CacheScope& s) { s.extra = "tokenizer:abc"; });
  // Field boundaries are length-prefixed: moving a character between fields is a different scope.
  add([](CacheScope& s) { s.dtype = "fp32m"; s.pooling = "ean"; });
  std::set<std::array<std::uint8_t, CacheKey::size>> keys;
  for (const CacheScope& s : variants) keys.insert(CacheKeyMaker(s).key("the same text").bytes);
  EXPECT_EQ(keys.size(), variants.size());
}

TEST(CacheKey, LayoutHoldsTheTextLength) {
  CacheKeyMaker maker(test::test_scope());
  std::string text(1000, 'a');
  CacheKey k = maker.key(text);
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(k.bytes[64 + i]) << (8 * i);
  EXPECT_EQ(n, 1000u);
  // The scope digest prefix is shared by all texts of a scope.
  CacheKey other = maker.key("b");
  EXPECT_TRUE(std::equal(k.bytes.begin(), k.bytes.begin() + 32, other.bytes.begin()));
}

TEST(CacheKey, RejectsScopesWithoutDims) {
  CacheScope s = test::test_scope();
  s.dims = 0;
  EXPECT_THROW(CacheKeyMaker{s}, Error);
}

TEST(CacheKey, CacheMissesAcrossScopesForTheSameText) {
  CacheOptions options;
  options.memory_bytes = 1 << 20;
  Cache cache(options);
  CacheScope fp32 = test::test_scope(), q8 = test::test_scope(), small = test::test_scope(4);
  q8.dtype = "q8";
  CacheScope other_model = fp32;
  other_model.model[0] ^= 0x80;
  cache.put(CacheKeyMaker(fp32).key("shared text"), test::vector_for(1, 8));
  EXPECT_FALSE(cache.get(CacheKeyMaker(q8).key("shared text")));
  EXPECT_FALSE(cache.get(CacheKeyMaker(other_model).key("shared text")));
  EXPECT_FALSE(cache.get(CacheKeyMaker(small).key("shared text")));
  auto hit = cache.get(CacheKeyMaker(fp32).key("shared text"));
  ASSERT_TRUE(hit);
  EXPECT_EQ(*hit, test::vector_for(1, 8));
}

}  // namespace
}  // namespace leanembed
