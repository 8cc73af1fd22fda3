// Builds pickles by hand, opcode by opcode, as Python's pickler (protocol 2) emits them for
// torch.save's state dicts: the checkpoint reader's tests and the fuzz seeds both use it.
//
// Thread-compatible.
#ifndef DERMFED_TESTS_COMMON_MODEL_PICKLE_BUILDER_H_
#define DERMFED_TESTS_COMMON_MODEL_PICKLE_BUILDER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dermfed::test_util {

class PickleBuilder {
 public:
  PickleBuilder& Op(uint8_t op) {
    bytes_.push_back(static_cast<char>(op));
    return *this;
  }
  PickleBuilder& Raw(std::string_view raw) {
    bytes_.append(raw);
    return *this;
  }
  PickleBuilder& LittleEndian(uint64_t value, int width) {
    for (int i = 0; i < width; ++i) bytes_.push_back(static_cast<char>(value >> (8 * i)));
    return *this;
  }
  PickleBuilder& Proto(int version = 2) { return Op(0x80).LittleEndian(version, 1); }
  PickleBuilder& Stop() { return Op('.'); }
  PickleBuilder& Mark() { return Op('('); }
  PickleBuilder& Tuple() { return Op('t'); }
  PickleBuilder& None() { return Op('N'); }
  PickleBuilder& Bool(bool b) { return Op(b ? 0x88 : 0x89); }
  PickleBuilder& Str(std::string_view s) { return Op('X').LittleEndian(s.size(), 4).Raw(s); }
  PickleBuilder& Int(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) return Op('J').LittleEndian(static_cast<uint32_t>(v), 4);
    return Op(0x8a).LittleEndian(8, 1).LittleEndian(static_cast<uint64_t>(v), 8);
  }
  PickleBuilder& Global(std::string_view module, std::string_view name) {
    return Op('c').Raw(module).Raw("\n").Raw(name).Raw("\n");
  }
  PickleBuilder& NewOrderedDict() { return Global("collections", "OrderedDict").Op(')').Op('R'); }
  PickleBuilder& IntTuple(const std::vector<int64_t>& values) {
    Mark();
    for (int64_t v : values) Int(v);
    return Tuple();
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace dermfed::test_util

#endif  // DERMFED_TESTS_COMMON_MODEL_PICKLE_BUILDER_H_
