// TensorProto decoding on hand-built models: every data field, views vs owned storage, size checks.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "reader_test_util.h"

namespace {

using namespace leanembed::onnx;
using leanembed::ErrorCode;
using leanembed::test::expect_error;
using leanembed::test::le_bytes;
using leanembed::test::model_with_initializer;
using leanembed::test::parse;
using leanembed::test::Proto;
using leanembed::test::tensor_header;

bool inside(const Model& m, const TensorData& t) {
  auto* b = m.file_bytes.data();
  return t.bytes.data() >= b && t.bytes.data() + t.bytes.size() <= b + m.file_bytes.size();
}

template <typename T>
std::vector<T> values(const TensorData& t) {
  std::vector<T> v(t.bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

TEST(Tensors, DataTypeSizesAndNames) {
  EXPECT_EQ(data_type_size(DataType::float32), 4u);
  EXPECT_EQ(data_type_size(DataType::float16), 2u);
  EXPECT_EQ(data_type_size(DataType::bfloat16), 2u);
  EXPECT_EQ(data_type_size(DataType::int64), 8u);
  EXPECT_EQ(data_type_size(DataType::float64), 8u);
  EXPECT_EQ(data_type_size(DataType::uint32), 4u);
  EXPECT_EQ(data_type_size(DataType::boolean), 1u);
  EXPECT_EQ(data_type_size(DataType::int8), 1u);
  EXPECT_EQ(data_type_size(DataType::string), 0u);
  EXPECT_EQ(data_type_size(static_cast<DataType>(99)), 0u);
  EXPECT_STREQ(data_type_name(DataType::int64), "int64");
  EXPECT_STREQ(data_type_name(DataType::float16), "float16");
  EXPECT_STREQ(data_type_name(static_cast<DataType>(99)), "unknown");
}

TEST(Tensors, RawDataIsAViewIntoTheModelBytes) {
  ReadOptions zero_copy;
  zero_copy.copy_misaligned = false;
  Model m = parse(model_with_initializer(leanembed::test::raw_tensor("w", 1, {2, 3}, le_bytes<float>({1, 2, 3, 4, 5, 6}))), zero_copy);
  const TensorData& w = m.graph.initializers.at(0);
  EXPECT_EQ(w.name, "w");
  EXPECT_EQ(w.dtype, DataType::float32);
  EXPECT_EQ(w.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w.numel(), 6);
  EXPECT_TRUE(w.mapped);
  EXPECT_TRUE(inside(m, w));
  EXPECT_EQ(values<float>(w), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(m.bytes_copied, 0u);
  EXPECT_EQ(m.bytes_decoded, 0u);
}

// Places a float32 raw_data payload at a chosen alignment by padding the tensor name.
Proto tensor_at_offset_mod4(int want_mod4, const std::string& owner_name, std::size_t& payload_offset) {
  for (int pad = 0; pad < 8; ++pad) {
    std::string name = "w";
    Proto t = tensor_header("w", 1, {3});
    t.bytes(12, std::string(pad, 'd'));  // doc_string: skipped, shifts the payload
    t.bytes(9, le_bytes<float>({7, 8, 9}));
    Proto m = model_with_initializer(t);
    std::size_t off = m.str().find(le_bytes<float>({7, 8, 9}));
    if (off % 4 == static_cast<std::size_t>(want_mod4)) {
      payload_offset = off;
      return m;
    }
  }
  ADD_FAILURE() << "could not place payload for " << owner_name;
  return {};
}

TEST(Tensors, MisalignedViewsAreCopiedByDefaultAndKeptWithZeroCopy) {
  std::size_t off = 0;
  Proto p = tensor_at_offset_mod4(1, "misaligned", off);
  // Parse from 64-byte-aligned storage so address % 4 == offset % 4.
  auto storage = std::shared_ptr<std::byte>(static_cast<std::byte*>(::operator new(p.size(), std::align_val_t{64})),
                                            [](std::byte* q) { ::operator delete(q, std::align_val_t{64}); });
  std::memcpy(storage.get(), p.str().data(), p.size());
  std::span<const std::byte> bytes(storage.get(), p.size());

  Model copied = parse_model(bytes, storage, "", "t.onnx");
  const TensorData& a = copied.graph.initializers.at(0);
  EXPECT_FALSE(a.mapped);
  EXPECT_TRUE(a.aligned());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.bytes.data()) % 64, 0u);
  EXPECT_EQ(copied.bytes_copied, 12u);
  EXPECT_EQ(copied.tensors_copied, 1u);
  EXPECT_EQ(std::vector<float>(a.as<float>().begin(), a.as<float>().end()), (std::vector<float>{7, 8, 9}));

  ReadOptions zero_copy;
  zero_copy.copy_misaligned = false;
  Model view = parse_model(bytes, storage, "", "t.onnx", zero_copy);
  const TensorData& b = view.graph.initializers.at(0);
  EXPECT_TRUE(b.mapped);
  EXPECT_EQ(b.bytes.data(), storage.get() + off);
  EXPECT_FALSE(b.aligned());
  EXPECT_EQ(view.bytes_copied, 0u);
  expect_error([&] { b.as<float>(); }, ErrorCode::runtime, {"'w'", "alignment"});
  EXPECT_EQ(values<float>(b), (std::vector<float>{7, 8, 9}));
}

TEST(Tensors, PackedFloatDataIsAViewUnpackedIsDecoded) {
  ReadOptions zero_copy;
  zero_copy.copy_misaligned = false;
  Proto packed = tensor_header("w", 1, {3});
  packed.packed_floats(4, {0.5f, -1.0f, 3.25f});
  Model m = parse(model_with_initializer(packed), zero_copy);
  const TensorData& w = m.graph.initializers.at(0);
  EXPECT_TRUE(w.mapped);
  EXPECT_TRUE(inside(m, w));
  EXPECT_EQ(values<float>(w), (std::vector<float>{0.5f, -1.0f, 3.25f}));

  Proto unpacked = tensor_header("w", 1, {3});
  unpacked.float32(4, 0.5f).float32(4, -1.0f).float32(4, 3.25f);
  Model u = parse(model_with_initializer(unpacked));
  const TensorData& x = u.graph.initializers.at(0);
  EXPECT_FALSE(x.mapped);
  EXPECT_EQ(std::vector<float>(x.as<float>().begin(), x.as<float>().end()), (std::vector<float>{0.5f, -1.0f, 3.25f}));
  EXPECT_EQ(u.bytes_decoded, 12u);

  // Two packed chunks are concatenated (protobuf allows it).
  Proto chunks = tensor_header("w", 1, {3});
  chunks.packed_floats(4, {0.5f}).packed_floats(4, {-1.0f, 3.25f});
  Model c = parse(model_with_initializer(chunks));
  EXPECT_EQ(values<float>(c.graph.initializers.at(0)), (std::vector<float>{0.5f, -1.0f, 3.25f}));
}

TEST(Tensors, Int64DataPackedAndUnpacked) {
  Proto packed = tensor_header("w", 7, {4});
  packed.packed_varints(7, {0, -1, std::numeric_limits<int64_t>::min(), 123456789012345});
  Model m = parse(model_with_initializer(packed));
  const TensorData& w = m.graph.initializers.at(0);
  EXPECT_FALSE(w.mapped);
  EXPECT_EQ(w.dtype, DataType::int64);
  EXPECT_EQ(std::vector<int64_t>(w.as<int64_t>().begin(), w.as<int64_t>().end()),
            (std::vector<int64_t>{0, -1, std::numeric_limits<int64_t>::min(), 123456789012345}));
  EXPECT_EQ(m.bytes_decoded, 32u);

  Proto unpacked = tensor_header("w", 7, {2});
  unpacked.int64(7, -5).int64(7, 9);
  Model u = parse(model_with_initializer(unpacked));
  EXPECT_EQ(values<int64_t>(u.graph.initializers.at(0)), (std::vector<int64_t>{-5, 9}));
}

TEST(Tensors, Int32DataFeedsEverySmallType) {
  auto decode = [](int32_t dtype, std::initializer_list<int64_t> v, int64_t n) {
    Proto t = tensor_header("w", dtype, {n});
    t.packed_varints(5, v);
    return parse(model_with_initializer(t));
  };
  Model i32 = decode(6, {-7, 2147483647}, 2);
  EXPECT_EQ(values<int32_t>(i32.graph.initializers[0]), (std::vector<int32_t>{-7, 2147483647}));
  Model i8 = decode(3, {-128, 127, -1}, 3);
  EXPECT_EQ(values<int8_t>(i8.graph.initializers[0]), (std::vector<int8_t>{-128, 127, -1}));
  Model u8 = decode(2, {0, 255, 17}, 3);
  EXPECT_EQ(values<uint8_t>(u8.graph.initializers[0]), (std::vector<uint8_t>{0, 255, 17}));
  Model i16 = decode(5, {-32768, 300}, 2);
  EXPECT_EQ(values<int16_t>(i16.graph.initializers[0]), (std::vector<int16_t>{-32768, 300}));
  Model u16 = decode(4, {65535}, 1);
  EXPECT_EQ(values<uint16_t>(u16.graph.initializers[0]), (std::vector<uint16_t>{65535}));
  Model f16 = decode(10, {0x3c00, 0xc000}, 2);  // 1.0, -2.0 as float16 bits
  EXPECT_EQ(f16.graph.initializers[0].dtype, DataType::float16);
  EXPECT_EQ(values<uint16_t>(f16.graph.initializers[0]), (std::vector<uint16_t>{0x3c00, 0xc000}));
  Model bf16 = decode(16, {0x3f80}, 1);
  EXPECT_EQ(values<uint16_t>(bf16.graph.initializers[0]), (std::vector<uint16_t>{0x3f80}));
  Model b = decode(9, {1, 0, 1}, 3);
  EXPECT_EQ(values<uint8_t>(b.graph.initializers[0]), (std::vector<uint8_t>{1, 0, 1}));

  expect_error([&] { decode(3, {128}, 1); }, ErrorCode::model_format, {"'w'", "int32_data", "128", "int8"});
  expect_error([&] { decode(2, {-1}, 1); }, ErrorCode::model_format, {"out of range", "uint8"});
  expect_error([&] { decode(9, {2}, 1); }, ErrorCode::model_format, {"bool"});
  expect_error([&] { decode(6, {int64_t{1} << 40}, 1); }, ErrorCode::model_format, {"int32"});
  expect_error([&] { decode(10, {70000}, 1); }, ErrorCode::model_format, {"float16"});
}

TEST(Tensors, DoubleAndUint64Data) {
  Proto d = tensor_header("w", 11, {2});
  d.bytes(10, le_bytes<double>({1.25, -3.5}));
  Model md = parse(model_with_initializer(d));
  EXPECT_EQ(values<double>(md.graph.initializers[0]), (std::vector<double>{1.25, -3.5}));
  Proto d1 = tensor_header("w", 11, {1});
  uint64_t bits;
  double half = 0.5;
  std::memcpy(&bits, &half, 8);
  d1.fixed64(10, bits);
  EXPECT_EQ(values<double>(parse(model_with_initializer(d1)).graph.initializers[0]), (std::vector<double>{0.5}));

  Proto u64 = tensor_header("w", 13, {2});
  u64.packed_varints(11, {static_cast<int64_t>(UINT64_MAX), 5});
  EXPECT_EQ(values<uint64_t>(parse(model_with_initializer(u64)).graph.initializers[0]),
            (std::vector<uint64_t>{UINT64_MAX, 5}));
  Proto u32 = tensor_header("w", 12, {1});
  u32.varint(11, 4000000000u);
  EXPECT_EQ(values<uint32_t>(parse(model_with_initializer(u32)).graph.initializers[0]),
            (std::vector<uint32_t>{4000000000u}));
  Proto u32big = tensor_header("w", 12, {1});
  u32big.varint(11, uint64_t{1} << 33);
  expect_error([&] { parse(model_with_initializer(u32big)); }, ErrorCode::model_format, {"uint32"});
}

TEST(Tensors, ScalarAndEmptyTensors) {
  Model s = parse(model_with_initializer(leanembed::test::raw_tensor("w", 1, {}, le_bytes<float>({4.0f}))));
  EXPECT_TRUE(s.graph.initializers[0].dims.empty());
  EXPECT_EQ(s.graph.initializers[0].numel(), 1);
  EXPECT_EQ(values<float>(s.graph.initializers[0]), (std::vector<float>{4.0f}));
  Model e = parse(model_with_initializer(tensor_header("w", 7, {0, 5})));
  EXPECT_EQ(e.graph.initializers[0].numel(), 0);
  EXPECT_TRUE(e.graph.initializers[0].bytes.empty());
}

TEST(Tensors, ByteSizeMustMatchDims) {
  auto p = model_with_initializer(leanembed::test::raw_tensor("w", 1, {2, 3}, le_bytes<float>({1, 2, 3, 4, 5})));
  expect_error([&] { parse(p); }, ErrorCode::model_format, {"test.onnx", "'w'", "raw_data has 20 bytes", "[2, 3]", "24"});
  Proto few = tensor_header("w", 1, {3});
  few.packed_floats(4, {1, 2});
  expect_error([&] { parse(model_with_initializer(few)); }, ErrorCode::model_format, {"float_data holds 2", "3"});
  Proto ints = tensor_header("w", 7, {3});
  ints.packed_varints(7, {1, 2, 3, 4});
  expect_error([&] { parse(model_with_initializer(ints)); }, ErrorCode::model_format, {"int64_data holds 4"});
  expect_error([&] { parse(model_with_initializer(tensor_header("w", 1, {2}))); }, ErrorCode::model_format,
               {"'w'", "no data"});
  Proto ragged = tensor_header("w", 1, {1});
  ragged.bytes(4, "abcde");
  expect_error([&] { parse(model_with_initializer(ragged)); }, ErrorCode::model_format, {"not a multiple of 4"});
}

TEST(Tensors, DimsMustBeNonNegativeAndNotOverflow) {
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", 1, {2, -3}, ""))); },
               ErrorCode::model_format, {"'w'", "negative", "[2, -3]"});
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", 1, {1LL << 40, 1LL << 40}, ""))); },
               ErrorCode::model_format, {"'w'", "overflow"});
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", 7, {1LL << 31, 1LL << 31}, ""))); },
               ErrorCode::model_format, {"'w'", "overflow"});
  // Zero anywhere makes the product 0 even with huge other dims.
  Model z = parse(model_with_initializer(leanembed::test::raw_tensor("w", 1, {0, 1LL << 62, 1LL << 62}, "")));
  EXPECT_EQ(z.graph.initializers[0].bytes.size(), 0u);
}

TEST(Tensors, DataTypesAndFieldsMustAgree) {
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", 99, {1}, "x"))); },
               ErrorCode::model_format, {"'w'", "unknown data_type code 99"});
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", 0, {1}, "x"))); },
               ErrorCode::model_format, {"data_type is missing"});
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", -4, {1}, "x"))); },
               ErrorCode::model_format, {"unknown data_type"});
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", 8, {1}, "x"))); },
               ErrorCode::unsupported, {"'w'", "string"});
  expect_error([&] { parse(model_with_initializer(leanembed::test::raw_tensor("w", 14, {1}, "12345678"))); },
               ErrorCode::unsupported, {"complex"});
  Proto wrong = tensor_header("w", 7, {1});
  wrong.packed_floats(4, {1.0f});
  expect_error([&] { parse(model_with_initializer(wrong)); }, ErrorCode::model_format,
               {"'w'", "int64", "float_data", "int64_data"});
  Proto both = leanembed::test::raw_tensor("w", 1, {1}, le_bytes<float>({1}));
  both.packed_floats(4, {1.0f});
  expect_error([&] { parse(model_with_initializer(both)); }, ErrorCode::model_format, {"more than one field"});
  Proto strings = leanembed::test::raw_tensor("w", 1, {1}, le_bytes<float>({1}));
  strings.bytes(6, "hello");
  expect_error([&] { parse(model_with_initializer(strings)); }, ErrorCode::model_format, {"string_data"});
  Proto seg = leanembed::test::raw_tensor("w", 1, {1}, le_bytes<float>({1}));
  seg.message(3, Proto().int64(1, 0).int64(2, 1));
  expect_error([&] { parse(model_with_initializer(seg)); }, ErrorCode::unsupported, {"segment"});
  Proto loc = leanembed::test::raw_tensor("w", 1, {1}, le_bytes<float>({1}));
  loc.varint(14, 7);
  expect_error([&] { parse(model_with_initializer(loc)); }, ErrorCode::model_format, {"data_location 7"});
}

TEST(Tensors, TypedFieldsWithWrongWireTypes) {
  Proto f = tensor_header("w", 1, {1});
  f.varint(4, 3);  // float_data as a varint
  expect_error([&] { parse(model_with_initializer(f)); }, ErrorCode::model_format,
               {"float_data", "expected wire type fixed32", "found varint"});
  Proto i = tensor_header("w", 7, {1});
  i.fixed32(7, 3);
  expect_error([&] { parse(model_with_initializer(i)); }, ErrorCode::model_format, {"int64_data", "found fixed32"});
  Proto d = tensor_header("w", 11, {1});
  d.fixed32(10, 3);
  expect_error([&] { parse(model_with_initializer(d)); }, ErrorCode::model_format, {"double_data", "fixed64"});
  Proto r = tensor_header("w", 1, {1});
  r.fixed32(9, 3);  // raw_data as fixed32
  expect_error([&] { parse(model_with_initializer(r)); }, ErrorCode::model_format, {"raw_data", "length-delimited"});
  Proto dt = tensor_header("w", 1, {1});
  dt.bytes(2, "x");
  expect_error([&] { parse(model_with_initializer(dt)); }, ErrorCode::model_format, {"data_type", "varint"});
  Proto dims = tensor_header("w", 1, {});
  dims.fixed64(1, 1);
  expect_error([&] { parse(model_with_initializer(dims)); }, ErrorCode::model_format, {"dims"});
  Proto packed_bad = tensor_header("w", 7, {1});
  packed_bad.bytes(7, std::string("\x80", 1));  // ends inside a varint
  expect_error([&] { parse(model_with_initializer(packed_bad)); }, ErrorCode::model_format, {"int64_data", "varint"});
}

TEST(Tensors, ConstantAttributeTensorsAndTensorLists) {
  Proto attr;
  attr.bytes(1, "value").varint(20, 4).message(5, leanembed::test::raw_tensor("", 7, {2}, le_bytes<int64_t>({3, -4})));
  Proto list;
  list.bytes(1, "many").varint(20, 9);
  list.message(10, leanembed::test::raw_tensor("a", 1, {1}, le_bytes<float>({1})));
  list.message(10, leanembed::test::raw_tensor("b", 1, {1}, le_bytes<float>({2})));
  Proto n = leanembed::test::node("Constant", {}, {"c"}, "const");
  n.message(5, attr).message(5, list);
  Proto g;
  g.message(1, n).message(12, leanembed::test::value_info("c", 7, {2}));
  Model m = parse(leanembed::test::model(g));
  const Attribute* v = m.graph.nodes.at(0).attribute("value");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, AttributeType::tensor);
  EXPECT_EQ(values<int64_t>(v->t), (std::vector<int64_t>{3, -4}));
  const Attribute* l = m.graph.nodes[0].attribute("many");
  ASSERT_EQ(l->tensors.size(), 2u);
  EXPECT_EQ(l->tensors[1].name, "b");
  EXPECT_EQ(values<float>(l->tensors[1]), (std::vector<float>{2}));
  // A bad attribute tensor is reported with its place.
  Proto bad;
  bad.bytes(1, "value").varint(20, 4).message(5, leanembed::test::raw_tensor("", 7, {2}, "x"));
  Proto n2 = leanembed::test::node("Constant", {}, {"c"}, "const");
  n2.message(5, bad);
  Proto g2;
  g2.message(1, n2).message(12, leanembed::test::value_info("c", 7, {2}));
  expect_error([&] { parse(leanembed::test::model(g2)); }, ErrorCode::model_format,
               {"graph.node[0].attribute[0].t", "raw_data has 1 bytes"});
}

TEST(Tensors, ModelKeepsItsBytesAlive) {
  Model m;
  {
    auto buf = std::make_shared<std::string>(model_with_initializer(leanembed::test::raw_tensor("w", 1, {2}, le_bytes<float>({5, 6}))).str());
    ReadOptions zero_copy;
    zero_copy.copy_misaligned = false;
    m = parse_model(std::as_bytes(std::span(buf->data(), buf->size())), buf, "", "t", zero_copy);
  }
  TensorData w = m.graph.initializers.at(0);
  m = Model();  // the TensorData alone keeps the bytes
  EXPECT_EQ(values<float>(w), (std::vector<float>{5, 6}));
}

}  // namespace
