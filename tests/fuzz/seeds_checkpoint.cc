#include "tests/fuzz/seeds_checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/common/model/pickle_builder.h"

namespace dermfed::fuzz {
namespace {

namespace fs = std::filesystem;

using ::dermfed::test_util::PickleBuilder;

struct Tensor {
  std::string key;
  std::string storage_type;
  std::string storage_key;
  int64_t storage_numel;
  int64_t offset;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

const std::vector<Tensor>& Tensors() {
  static const std::vector<Tensor> tensors = {
      {"conv.weight", "FloatStorage", "0", 24, 0, {2, 3, 2, 2}, {12, 4, 2, 1}},
      {"conv.weight_t", "FloatStorage", "0", 24, 0, {3, 2}, {1, 3}},  // a view, transposed
      {"bn.running_var", "DoubleStorage", "1", 2, 0, {2}, {1}},
      {"bn.num_batches_tracked", "LongStorage", "2", 1, 0, {}, {}},
      {"fc.bias", "HalfStorage", "3", 4, 1, {3}, {1}},
      {"mask", "BoolStorage", "4", 3, 0, {3}, {1}},
  };
  return tensors;
}

int64_t ElementBytes(const std::string& storage_type) {
  if (storage_type == "DoubleStorage" || storage_type == "LongStorage") return 8;
  if (storage_type == "HalfStorage") return 2;
  if (storage_type == "BoolStorage") return 1;
  return 4;
}

// The object pickle torch.save writes for an OrderedDict of tensors; `legacy` adds the
// sixth persistent-id element (view_metadata = None).
std::string StateDictPickle(bool legacy, int protocol) {
  PickleBuilder p;
  p.Proto(protocol).NewOrderedDict().Mark();
  for (const Tensor& t : Tensors()) {
    p.Str(t.key).Global("torch._utils", "_rebuild_tensor_v2").Mark();
    p.Mark()
        .Str("storage")
        .Global("torch", t.storage_type)
        .Str(t.storage_key)
        .Str("cpu")
        .Int(t.storage_numel);
    if (legacy) p.Op('N');
    p.Op('t').Op('Q');
    p.Int(t.offset).IntTuple(t.sizes).IntTuple(t.strides).Op(0x89).NewOrderedDict();
    p.Op('t').Op('R');
  }
  return p.Op('u').Op('.').bytes();
}

// Each distinct storage once, in order of first appearance: key, type, numel.
std::vector<const Tensor*> Storages() {
  std::vector<const Tensor*> out;
  for (const Tensor& t : Tensors()) {
    bool seen = false;
    for (const Tensor* s : out) seen = seen || s->storage_key == t.storage_key;
    if (!seen) out.push_back(&t);
  }
  return out;
}

std::string StorageBytes(const Tensor& t) {
  std::string data(static_cast<size_t>(t.storage_numel * ElementBytes(t.storage_type)), '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 5 == 0 ? 0 : 0x3c);
  return data;
}

std::string LegacyFile(int protocol) {
  std::string out;
  out += PickleBuilder()
             .Proto()
             .Op(0x8a)
             .LittleEndian(10, 1)
             .Raw(std::string_view("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10))
             .Op('.')
             .bytes();
  out += PickleBuilder().Proto().Op('M').LittleEndian(1001, 2).Op('.').bytes();
  out += PickleBuilder()
             .Proto()
             .Op('}')
             .Mark()
             .Str("protocol_version")
             .Int(1001)
             .Str("little_endian")
             .Op(0x88)
             .Str("type_sizes")
             .Op('}')
             .Mark()
             .Str("short")
             .Int(2)
             .Str("int")
             .Int(4)
             .Str("long")
             .Int(4)
             .Op('u')
             .Op('u')
             .Op('.')
             .bytes();
  out += StateDictPickle(/*legacy=*/true, protocol);
  PickleBuilder keys;
  keys.Proto().Op(']').Mark();
  for (const Tensor* s : Storages()) keys.Str(s->storage_key);
  out += keys.Op('e').Op('.').bytes();
  for (const Tensor* s : Storages()) {
    out += PickleBuilder().LittleEndian(static_cast<uint64_t>(s->storage_numel), 8).bytes();
    out += StorageBytes(*s);
  }
  return out;
}

std::string ZipFile(bool with_byteorder) {
  std::string out;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
      out.append(static_cast<const char*>(data), size);
      return size;
    });
    const std::string pickle = StateDictPickle(/*legacy=*/false, 2);
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    if (with_byteorder) writer.writeRecord("byteorder", "little", 6);
    for (const Tensor* s : Storages()) {
      const std::string bytes = StorageBytes(*s);
      writer.writeRecord("data/" + s->storage_key, bytes.data(), bytes.size());
    }
    writer.writeEndOfFile();
  }
  return out;
}

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "dermfed_fuzz_seeds: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

}  // namespace

void CheckpointSeeds(const fs::path& out) {
  const fs::path pickles = out / "pickle_fuzzer";
  const fs::path files = out / "checkpoint_fuzzer";
  fs::remove_all(pickles);
  fs::remove_all(files);
  Write(pickles, "state_dict_zip.pkl", StateDictPickle(false, 2));
  Write(pickles, "state_dict_legacy.pkl", StateDictPickle(true, 2));
  // Protocol 4 framing and opcodes around a small container.
  Write(pickles, "proto4_small.pkl",
        PickleBuilder()
            .Proto(4)
            .Op(0x95)
            .LittleEndian(13, 8)
            .Op(0x8c)
            .LittleEndian(1, 1)
            .Raw("a")
            .Op(0x94)
            .Op('K')
            .LittleEndian(7, 1)
            .Op(0x86)
            .Op('h')
            .LittleEndian(0, 1)
            .Op(']')
            .Op(0x87)
            .Op(0x94)
            .Op('.')
            .bytes());
  Write(pickles, "legacy_stream.bin", LegacyFile(2));
  Write(files, "state_zip.pt", ZipFile(true));
  Write(files, "state_zip_no_byteorder.pt", ZipFile(false));
  Write(files, "state_legacy.pt", LegacyFile(2));
}

}  // namespace dermfed::fuzz
