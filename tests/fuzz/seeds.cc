// dermfed_fuzz_seeds OUT_DIR: writes the seed corpus of every fuzz target, OUT_DIR/<target>/,
// and the dictionaries made from the code's own tables, OUT_DIR/<target>.dict. Run at build
// time (tests/fuzz/CMakeLists.txt); nothing generated is committed.
//
// Seeds are valid inputs made by the code that writes them in production wherever there is
// such code (message Serialize, SaveModelState, AuditLog::Record, the codecs, SchemaToJson,
// the unit tests' dataset fixtures), plus a few hand-made edge cases, so the fuzzers start
// from deep inside each parser instead of at its first check.
#include <png.h>
#include <turbojpeg.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/data/isic_2019_reader.h"
#include "client/data/metadata_schema.h"
#include "client/data/pad_ufes_20_reader.h"
#include "client/federation/site_config.h"
#include "client/image/codec.h"
#include "common/audit/audit_log.h"
#include "common/digest.h"
#include "common/model_state.h"
#include "common/model_state_file.h"
#include "common/model_transfer.h"
#include "common/secagg/derivation.h"
#include "common/secagg/messages.h"
#include "common/update_codec.h"
#include "coordinator/coordinator_config.h"
#include "dermfed/v1/federation.pb.h"
#include "tests/client/data/test_files.h"
#include "tests/fuzz/fuzz_model.h"
#include "tests/fuzz/seeds_checkpoint.h"

namespace dermfed::fuzz {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "dermfed_fuzz_seeds: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Ok(StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + v.status().ToString());
  return std::move(v).value();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class Corpus {
 public:
  Corpus(fs::path root, std::string target) : dir_(root / target) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void Add(const std::string& name, const std::string& bytes) {
    std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) Die("cannot write " + (dir_ / name).string());
    ++count_;
  }
  void Add(const std::string& name, const std::vector<uint8_t>& bytes) {
    Add(name, std::string(bytes.begin(), bytes.end()));
  }
  int count() const { return count_; }

 private:
  fs::path dir_;
  int count_ = 0;
};

// A libFuzzer dictionary: one quoted token a line, escaped as the format wants.
void WriteDict(const fs::path& path, const std::set<std::string>& tokens) {
  std::ofstream out(path, std::ios::trunc);
  for (const std::string& t : tokens) {
    if (t.empty()) continue;
    out << '"';
    for (unsigned char c : t) {
      if (c == '"' || c == '\\') {
        out << '\\' << c;
      } else if (c < 0x20 || c >= 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "\\x%02X", c);
        out << hex;
      } else {
        out << c;
      }
    }
    out << "\"\n";
  }
}

// --- secure aggregation ------------------------------------------------------------------

secagg::PublicKey Key(uint8_t fill) {
  secagg::PublicKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(fill + i);
  return k;
}

void SecAggSeeds(const fs::path& out) {
  using namespace secagg;
  Corpus c(out, "secagg_messages_fuzzer");
  Advertisement a{"hospital-a", Key(1), Key(2), Key(3)};
  Advertisement b{"hospital-b", Key(4), Key(5), Key(6)};
  c.Add("advertisement", a.Serialize());
  c.Add("advertisement_list", AdvertisementList{{a, b}}.Serialize());
  c.Add("advertisement_list_empty", AdvertisementList{}.Serialize());
  EncryptedShare share{"hospital-a", "hospital-b", std::vector<uint8_t>(92, 0x42)};
  c.Add("encrypted_share", share.Serialize());
  c.Add("share_bundle", ShareBundle{{share, {"hospital-a", "hospital-c", {1, 2, 3}}}}.Serialize());
  c.Add("masking_request", MaskingRequest{{"hospital-a", "hospital-b"}, {share}}.Serialize());
  c.Add("unmask_request", UnmaskRequest{{"hospital-a"}, {"hospital-b"}}.Serialize());
  crypto::SecretBytes key_share(kKeyBytes, 7);
  c.Add("unmask_response",
        UnmaskResponse{"hospital-a", {{"hospital-b", key_share}}, {{"hospital-a", key_share}}}
            .Serialize());
  internal::SharePlaintext p{"hospital-a", "hospital-b", key_share, key_share};
  const crypto::SecretBytes plain = internal::EncodeSharePlaintext(p);
  c.Add("share_plaintext", std::string(plain.begin(), plain.end()));

  // secagg_protocol_fuzzer: a flags byte, then {op, sender, u16 length, bytes} records.
  Corpus protocol(out, "secagg_protocol_fuzzer");
  auto record = [](uint8_t op, uint8_t sender, const std::string& bytes) {
    std::string r = {static_cast<char>(op), static_cast<char>(sender),
                     static_cast<char>(bytes.size() & 0xff), static_cast<char>(bytes.size() >> 8)};
    return r + bytes;
  };
  for (uint8_t flags : {0, 1, 2, 4, 7})
    protocol.Add("honest_" + std::to_string(flags), std::string(1, flags));
  Advertisement x{"site-x", Key(9), Key(10), Key(11)};
  protocol.Add("site_x_advertises", std::string(1, '\0') + record(0, 1, x.Serialize()));
  protocol.Add("site_x_shares",
               std::string(1, '\0') + record(0, 1, x.Serialize()) +
                   record(1, 1, ShareBundle{{{"site-x", "site-a", {1, 2}}}}.Serialize()));
  protocol.Add("outsider_masks", std::string(1, '\4') + record(2, 0, std::string(4 + 32, '\1')));
  protocol.Add("forged_unmask",
               std::string(1, '\1') +
                   record(6, 0, UnmaskRequest{{"site-a", "site-b"}, {"site-c"}}.Serialize()) +
                   record(6, 1, UnmaskRequest{{"site-a"}, {"site-b", "site-c"}}.Serialize()));
  protocol.Add("forged_masking",
               std::string(1, '\0') +
                   record(5, 2, MaskingRequest{{"site-a", "site-b"}, {share}}.Serialize()));
  protocol.Add("site_x_unmasks",
               std::string(1, '\2') +
                   record(3, 1,
                          UnmaskResponse{"site-x", {{"site-c", key_share}}, {{"site-a", key_share}}}
                              .Serialize()));
}

// --- model states: manifests, files, chunk streams ---------------------------------------

std::vector<ModelState> States() {
  std::vector<ModelState> states;
  states.push_back(FuzzGlobalModel().Clone());
  std::vector<TensorSpec> every_dtype;
  const DType dtypes[] = {DType::kFloat32,  DType::kFloat64, DType::kFloat16,
                          DType::kBFloat16, DType::kInt64,   DType::kInt32,
                          DType::kInt8,     DType::kUInt8,   DType::kBool};
  int i = 0;
  for (DType d : dtypes) every_dtype.push_back({"t" + std::to_string(i++), d, {2, 3}});
  every_dtype.push_back({"scalar", DType::kFloat32, {}});
  every_dtype.push_back({"empty", DType::kFloat32, {0, 5}});
  ModelState s = Ok(ModelState::Create(every_dtype), "every dtype");
  for (uint64_t b = 0; b < s.size_bytes(); ++b) s.data()[b] = static_cast<uint8_t>(b * 37);
  states.push_back(std::move(s));
  states.push_back(Ok(ModelState::Create({}), "empty state"));
  states.push_back(Ok(ModelState::Create({{"secagg/masked", DType::kInt32, {40}}}), "masked"));
  return states;
}

std::string Delimited(const std::vector<v1::ModelChunk>& chunks) {
  std::string out;
  for (const v1::ModelChunk& c : chunks) {
    const std::string body = c.SerializeAsString();
    uint64_t n = body.size();
    do {
      uint8_t byte = n & 0x7f;
      n >>= 7;
      if (n) byte |= 0x80;
      out += static_cast<char>(byte);
    } while (n);
    out += body;
  }
  return out;
}

// The stream PushUpdate/PullModel carry: a header (first chunk, with or without data),
// then chunks of `chunk` bytes.
std::vector<v1::ModelChunk> Stream(const ModelState& state, size_t chunk, bool data_in_header) {
  v1::ModelChunk first;
  v1::ModelHeader* h = first.mutable_header();
  h->set_model_version(3);
  h->set_round(2);
  *h->mutable_manifest() = ManifestToProto(state);
  const auto digest = BufferDigest(state);
  h->set_sha256(std::string(reinterpret_cast<const char*>(digest.data()), digest.size()));
  h->set_site_name("hospital-a");
  h->set_num_examples(120);
  (*h->mutable_train_metrics())["loss"] = 0.5;
  std::vector<v1::ModelChunk> chunks;
  uint64_t offset = 0;
  if (data_in_header && state.size_bytes() > 0) {
    const size_t n = std::min<uint64_t>(chunk, state.size_bytes());
    first.set_offset(0);
    first.set_data(reinterpret_cast<const char*>(state.data()), n);
    offset = n;
  }
  chunks.push_back(first);
  while (offset < state.size_bytes()) {
    const size_t n = std::min<uint64_t>(chunk, state.size_bytes() - offset);
    v1::ModelChunk c;
    c.set_offset(offset);
    c.set_data(reinterpret_cast<const char*>(state.data()) + offset, n);
    chunks.push_back(c);
    offset += n;
  }
  return chunks;
}

void ModelStateSeeds(const fs::path& out) {
  const std::vector<ModelState> states = States();
  Corpus manifests(out, "manifest_fuzzer");
  Corpus files(out, "model_state_file_fuzzer");
  Corpus streams(out, "chunk_assembler_fuzzer");
  const fs::path tmp = out / "tmp.dfs";
  for (size_t i = 0; i < states.size(); ++i) {
    const std::string n = std::to_string(i);
    manifests.Add("manifest_" + n, ManifestToProto(states[i]).SerializeAsString());
    if (Status s = SaveModelState(states[i], tmp.string()); !s.ok()) Die(s.ToString());
    files.Add("state_" + n + ".dfs", ReadFile(tmp.string()));
    // Mode bit 0: expect the global model's layout; only state 0 has it.
    const uint8_t layout_bit = i == 0 ? 1 : 0;
    for (size_t chunk : {size_t{64}, size_t{1} << 20}) {
      for (bool data_in_header : {false, true}) {
        for (uint8_t strategy = 0; strategy < (i == 0 ? 8 : 1); ++strategy) {
          const uint8_t mode = static_cast<uint8_t>(layout_bit | (strategy << 2));
          streams.Add("stream_" + n + "_" + std::to_string(chunk) + (data_in_header ? "_h" : "") +
                          "_m" + std::to_string(mode),
                      std::string(1, static_cast<char>(mode)) +
                          Delimited(Stream(states[i], chunk, data_in_header)));
        }
      }
    }
  }
  fs::remove(tmp);
  // A download resumed mid-stream: the chunk at the wrong offset.
  auto chunks = Stream(states[0], 64, false);
  std::swap(chunks[1], chunks[2]);
  streams.Add("stream_out_of_order", std::string(1, '\x03') + Delimited(chunks));

  // Compressed updates of the global model's layout, as sites send them: mode byte (see
  // update_codec_fuzzer.cc) + the "codec/<name>" tensor's bytes.
  Corpus codecs(out, "update_codec_fuzzer");
  const ModelState& layout = FuzzGlobalModel();
  ModelState delta = layout.Clone();
  if (delta.size_bytes() > 0) delta.data()[0] ^= 1;  // not all equal to the model
  const std::pair<uint8_t, CodecOptions> modes[] = {
      {0, {UpdateCodec::kFp16, 0.01}}, {1, {UpdateCodec::kInt8, 0.01}},
      {2 | (3 << 2), {UpdateCodec::kTopK, 4 / 32.0}}, {3 | (31 << 2), {UpdateCodec::kTopK, 1.0}}};
  for (const auto& [mode, options] : modes) {
    auto encoded = EncodeUpdate(delta, options);
    if (!encoded.ok()) Die("seed for update_codec_fuzzer: " + encoded.status().ToString());
    const std::string bytes(reinterpret_cast<const char*>(encoded->data()), encoded->size_bytes());
    codecs.Add(std::string(UpdateCodecName(options.codec)) + "_" + std::to_string(mode),
               std::string(1, static_cast<char>(mode)) + bytes);
    codecs.Add(std::string(UpdateCodecName(options.codec)) + "_short_" + std::to_string(mode),
               std::string(1, static_cast<char>(mode | 0x80)) + bytes.substr(0, bytes.size() / 2));
  }
}

// --- evaluation reports -------------------------------------------------------------------

void EvaluationSeeds(const fs::path& out) {
  Corpus c(out, "evaluation_fuzzer");
  const std::vector<std::string> classes = {"ACK", "BCC", "MEL", "NEV", "SCC", "SEK"};
  std::string two_sites;
  for (int site = 0; site < 2; ++site) {
    v1::MetricsReport r;
    r.set_site_name("hospital-" + std::to_string(site));
    r.set_round(3);
    r.set_model_version(3);
    int64_t rows = 0;
    for (int t = 0; t < 6; ++t) {
      for (int p = 0; p < 6; ++p) {
        const int64_t n = t == p ? 10 + site + t : (t + p + site) % 3;
        r.add_confusion(n);
        rows += n;
      }
    }
    r.set_num_examples(rows);
    auto& m = *r.mutable_metrics();
    m["loss"] = 0.8 + site;
    m["macro_auc"] = 0.7;
    for (const std::string& cls : classes) {
      m["importance_rows/" + cls] = 9 + site;
      for (const char* feature : {"age", "region", "fitspatrick"}) {
        m["importance/" + cls + "/" + feature] = 0.01 * (site + 1) * (cls[0] - 'A');
      }
    }
    m["importance/ACK/region/with/slashes"] = 0.5;
    std::string body = r.SerializeAsString();
    std::string framed;
    uint64_t n = body.size();
    do {
      uint8_t byte = n & 0x7f;
      n >>= 7;
      if (n) byte |= 0x80;
      framed += static_cast<char>(byte);
    } while (n);
    framed += body;
    c.Add("site_" + std::to_string(site), framed);
    two_sites += framed;
  }
  c.Add("two_sites", two_sites);
}

// --- config ----------------------------------------------------------------------------

void ConfigSeeds(const fs::path& out, const std::string& source_dir) {
  Corpus c(out, "config_fuzzer");
  c.Add("systemd_coordinator.toml", ReadFile(source_dir + "/deploy/systemd/coordinator.toml"));
  c.Add("systemd_site.toml", ReadFile(source_dir + "/deploy/systemd/site.toml"));
  c.Add("coordinator_secagg_dp.toml", R"([federation]
name = "test"
rounds = 5
min_sites = 3
fraction = 0.5
stragglers = "wait"
[model]
backbone = "tiny"
format = "pad-ufes-20"
image_size = 64
sr_factor = 1
use_metadata = false
[training]
optimizer = "sgd"
learning_rate = 1e-2
fedbn = true
[strategy]
name = "fedadam"
beta1 = 0.9
tau = 1e-3
[security]
secure_aggregation = true
secagg_threshold = 2
secagg_clip = 0.5
[dp]
mode = "distributed"
clip = 1.0
noise_multiplier = 1.1
delta = 1e-5
epsilon_budget = 8.0
[server]
insecure = true
listen = "127.0.0.1:0"
state_dir = "state"
[http]
listen = "127.0.0.1:0"
)");
  c.Add("coordinator_dotted.toml",
        "federation.rounds = 2\nserver.insecure = true\nstrategy = { name = \"krum\", "
        "krum_byzantine = 1 }\n# comment\n'model'.\"backbone\" = 'resnet50'\n");
  c.Add("site_insecure.toml",
        "[site]\nname = \"a\"\ndata = \"/d\"\ninsecure = true\nskip_bad_rows = true\n"
        "explain_rows = 0\nmax_backoff_s = 2.5\ndebug_fault = \"exit_after_share\"\n");
  c.Add("types.toml",
        "[site]\nseed = 0x10\nvalidation_fraction = 1_0e-1\nname = \"\"\"multi\nline\"\"\"\n"
        "when = 1979-05-27T07:32:00Z\nlist = [1, 2]\n");
  std::set<std::string> tokens = {"[",
                                  "]",
                                  "=",
                                  "\"",
                                  "'",
                                  "\"\"\"",
                                  "true",
                                  "false",
                                  "inf",
                                  "nan",
                                  "0x",
                                  "1e400",
                                  "-9223372036854775808",
                                  "{",
                                  "}",
                                  "\n",
                                  "#"};
  for (const auto* keys : {&coordinator::CoordinatorConfigKeys(), &client::SiteConfigKeys()}) {
    for (const ConfigKey& k : *keys) {
      const size_t dot = k.name.find('.');
      tokens.insert(k.name);
      tokens.insert("[" + k.name.substr(0, dot) + "]");
      tokens.insert(k.name.substr(dot + 1));
      if (!k.default_value.empty()) tokens.insert(k.default_value);
    }
  }
  for (const char* v : {"drop", "wait", "adamw", "sgd", "fedavg", "fedprox", "fedadam", "krum",
                        "trimmed_mean", "fedmedian", "central", "distributed", "off",
                        "exit_after_share", "exit_after_masked_upload"}) {
    tokens.insert(v);
  }
  WriteDict(out / "config_fuzzer.dict", tokens);
}

// --- audit log ----------------------------------------------------------------------------

void AuditSeeds(const fs::path& out) {
  Corpus c(out, "audit_log_fuzzer");
  const fs::path path = out / "tmp_audit.log";
  fs::remove(path);
  {
    auto log = Ok(audit::AuditLog::Open(path.string()), "audit log");
    audit::Entry e;
    e.actor = "spiffe://dermfed/site/hospital-a";
    e.role = "site";
    e.action = "join";
    e.site = "hospital-a";
    if (Status s = log->Record(e); !s.ok()) Die(s.ToString());
    c.Add("one_line.log", ReadFile(path.string()));
    e.action = "upload";
    e.round = 3;
    e.model_version = "v12";
    e.detail = "\xff\xfe not UTF-8 \"quoted\"\n";
    if (Status s = log->Record(e); !s.ok()) Die(s.ToString());
    e.outcome = audit::Outcome::kRefused;
    e.actor = "coordinator";
    e.role = "coordinator";
    e.action = "reject";
    e.round.reset();
    if (Status s = log->Record(e); !s.ok()) Die(s.ToString());
  }
  c.Add("three_lines.log", ReadFile(path.string()));
  fs::remove(path);
  c.Add("empty.log", "");
}

// --- datasets -----------------------------------------------------------------------------

void DatasetSeeds(const fs::path& out) {
  using namespace client::testing;
  std::vector<std::string> pad = {kPadHeader};
  for (const std::string& r : PadRows()) pad.push_back(r);
  std::vector<std::string> truth = {"image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"};
  for (const std::string& r : IsicTruthRows()) truth.push_back(r);
  std::vector<std::string> meta = {"image,age_approx,anatom_site_general,lesion_id,sex"};
  for (const std::string& r : IsicMetadataRows()) meta.push_back(r);
  auto lf = [](const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  };

  Corpus p(out, "pad_ufes_20_fuzzer");
  p.Add("release_crlf.csv", CrlfLines(pad));
  p.Add("lf_bom.csv", "\xEF\xBB\xBF" + lf(pad));
  p.Add("one_row.csv", CrlfLines({kPadHeader, kPadRealRow}));

  Corpus i(out, "isic_2019_fuzzer");
  i.Add("release", CrlfLines(truth) + std::string(1, '\0') + CrlfLines(meta));
  i.Add("no_metadata", CrlfLines(truth));
  i.Add("two_rows", lf({truth[0], truth[1], truth[2]}) + std::string(1, '\0') +
                        lf({meta[0], meta[1], meta[2]}));

  Corpus csv(out, "csv_reader_fuzzer");
  csv.Add("pad.csv", CrlfLines(pad));
  csv.Add("isic.csv", CrlfLines(truth));
  csv.Add("quoted.csv", "a,\"b,c\",d\r\n\"x\"\"y\",\"multi\nline\",\r\n\r\n,,\r\"cr\",only\r");
  csv.Add("semicolon.csv", "a;b;c\n1;\"2;3\";4\n;\n");  // last byte ';'... delimiter by mode
  csv.Add("tiny_limits.csv", "abcdefghijklmnopqrstuvwxyz,1,2,3,4,5,6,7,8,9\n\x04");

  // Metadata values in each shipped schema's column order, one a line.
  Corpus m(out, "metadata_encoder_fuzzer");
  const auto pad_schema = Ok(client::BuiltinSchema("pad-ufes-20"), "pad schema");
  const std::vector<std::string> header = [] {
    std::vector<std::string> h;
    std::stringstream ss(kPadHeader);
    for (std::string col; std::getline(ss, col, ',');) h.push_back(col);
    return h;
  }();
  int n = 0;
  for (const std::string& row : PadRows()) {
    std::vector<std::string> fields;
    std::stringstream ss(row);
    for (std::string f; std::getline(ss, f, ',');) fields.push_back(f);
    fields.resize(header.size());
    std::string values;
    for (const std::string& column : pad_schema.ColumnNames()) {
      for (size_t k = 0; k < header.size(); ++k) {
        if (header[k] == column) values += fields[k];
      }
      values += "\n";
    }
    m.Add("pad_row_" + std::to_string(n++), values);
  }
  m.Add("isic_row", "55.0\nanterior torso\nfemale\n");
  m.Add("numbers", "1e39\n-0\n  3.0 \nUNK\n0x10\n");

  // Every value the shipped schemas know, for the encoder; and the PAD columns.
  std::set<std::string> values = {"\n", " ", "nan", "inf", "1e39", "3.0", "-0"};
  for (const char* format : {"pad-ufes-20", "isic-2019"}) {
    const auto schema = Ok(client::BuiltinSchema(format), format);
    for (const auto& column : schema.columns) {
      for (const std::string& v : column.values) values.insert(v);
      for (const std::string& v : schema.MissingValuesOf(column)) values.insert(v);
    }
  }
  WriteDict(out / "metadata_encoder_fuzzer.dict", values);
  std::set<std::string> pad_tokens = values;
  pad_tokens.erase("\n");
  for (const std::string& column : header) pad_tokens.insert(column);
  for (const std::string& c : client::PadUfes20Reader::ClassNames()) pad_tokens.insert(c);
  WriteDict(out / "pad_ufes_20_fuzzer.dict", pad_tokens);
}

client::MetadataSchema GenericSchema() {
  client::MetadataSchema schema;
  schema.name = "clinic";
  schema.class_names = {"benign", "malignant"};
  schema.missing_values = {"", "NA"};
  client::ColumnSpec age;
  age.name = "age";
  age.type = client::ColumnSpec::Type::kNumeric;
  age.mean = 55;
  age.stddev = 18;
  client::ColumnSpec site;
  site.name = "site";
  site.values = {"arm", "leg", "trunk"};
  client::ColumnSpec notes;
  notes.name = "notes";
  notes.used = false;
  notes.values = {"x"};
  notes.missing_values = std::vector<std::string>{"", "?"};
  schema.columns = {age, site, notes};
  client::ManifestSpec manifest;
  manifest.image_column = "image";
  manifest.label_column = "label";
  manifest.group_column = "patient";
  schema.manifest = manifest;
  return schema;
}

void SchemaSeeds(const fs::path& out, const std::string& source_dir) {
  Corpus s(out, "schema_json_fuzzer");
  s.Add("pad_ufes_20.json", ReadFile(source_dir + "/client/data/schemas/pad_ufes_20.json"));
  s.Add("isic_2019.json", ReadFile(source_dir + "/client/data/schemas/isic_2019.json"));
  const std::string generic = client::SchemaToJson(GenericSchema());
  s.Add("generic.json", generic);
  client::MetadataSchema unseen = GenericSchema();
  unseen.unseen_as_missing = true;
  unseen.manifest->id_column = "id";
  s.Add("generic_unseen.json", client::SchemaToJson(unseen));

  Corpus g(out, "generic_csv_fuzzer");
  const std::string nul(1, '\0');
  g.Add("manifest", generic + nul +
                        "image,label,patient,age,site,notes\n"
                        "img/a.png,benign,p1,40,arm,\n"
                        "img/b.png,malignant,p1,NA,leg,?\n"
                        "img/c.jpg,benign,p2,71.5,trunk,x\n"
                        "d.png,malignant,p3,,,\n"
                        "sub/dir/f.png,benign,p4,33,ARM ,x\n"
                        "e.jpg,malignant,p5,60,leg,\n");
  g.Add("manifest_ids", client::SchemaToJson(unseen) + nul +
                            "id,image,label,patient,age,site,notes\r\n"
                            "1,img/a.png,benign,p1,40,elbow,\r\n"
                            "2,img/a.png,malignant,p2,50,arm,\r\n");
  g.Add("bad_rows", generic + nul +
                        "image,label,patient,age,site,notes\n"
                        "/etc/passwd,benign,p1,40,arm,\n"
                        "missing.png,benign,p1,40,arm,\n"
                        "img/a.png,unknown,p1,40,arm,\n"
                        "img/b.png,benign,,40,arm,\n"
                        "img/c.jpg,benign,p2,forty,arm,\n");
}

// --- images -------------------------------------------------------------------------------

std::vector<uint8_t> Pixels(int w, int h, int channels) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * channels);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>((i * 7) ^ (i >> 3));
  return p;
}

std::string Png(int w, int h, uint32_t format) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = format;
  const bool cmap = (format & PNG_FORMAT_FLAG_COLORMAP) != 0;
  if (cmap) img.colormap_entries = 16;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(img));
  for (size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<uint8_t>(i * 13 % (cmap ? 16 : 256));
  std::vector<uint8_t> colormap(PNG_IMAGE_COLORMAP_SIZE(img), 0x80);
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(img, size, 0, pixels.data(), 0,
                                       cmap ? colormap.data() : nullptr)) {
    Die(std::string("png size: ") + img.message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&img, out.data(), &size, 0, pixels.data(), 0,
                                 cmap ? colormap.data() : nullptr)) {
    Die(std::string("png write: ") + img.message);
  }
  out.resize(size);
  return out;
}

std::string Jpeg(int w, int h, int subsamp, int flags, int pixel_format) {
  tjhandle tj = tjInitCompress();
  const int channels = tjPixelSize[pixel_format];
  const std::vector<uint8_t> pixels = Pixels(w, h, channels);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(tj, pixels.data(), w, 0, h, pixel_format, &buf, &size, subsamp, 75, flags) != 0) {
    Die(std::string("jpeg: ") + tjGetErrorStr2(tj));
  }
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

uint32_t Crc32(const char* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<uint8_t>(p[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

// Decompression bombs: a valid small image whose header claims 16384 x 16384 pixels.
std::string PngBomb() {
  std::string png = Png(1, 1, PNG_FORMAT_RGB);
  for (int i : {16, 20}) png.replace(i, 4, std::string("\x00\x00\x40\x00", 4));
  const uint32_t crc = Crc32(png.data() + 12, 4 + 13);
  for (int i = 0; i < 4; ++i) png[29 + i] = static_cast<char>(crc >> (24 - 8 * i));
  return png;
}

std::string JpegBomb() {
  std::string jpeg = Jpeg(8, 8, TJSAMP_444, 0, TJPF_RGB);
  const size_t sof = jpeg.find("\xff\xc0");
  if (sof == std::string::npos) Die("no SOF0 marker in the JPEG seed");
  jpeg.replace(sof + 5, 4, std::string("\x40\x00\x40\x00", 4));  // height, width
  return jpeg;
}

void ImageSeeds(const fs::path& out) {
  Corpus c(out, "image_decoder_fuzzer");
  client::Image rgb{9, 7, Pixels(9, 7, 3)};
  c.Add("codec.png", Ok(client::EncodePng(rgb), "png"));
  c.Add("codec.jpg", Ok(client::EncodeJpeg(rgb), "jpeg"));
  c.Add("gray.png", Png(5, 3, PNG_FORMAT_GRAY));
  c.Add("gray_alpha.png", Png(4, 4, PNG_FORMAT_GA));
  c.Add("rgba.png", Png(3, 6, PNG_FORMAT_RGBA));
  c.Add("linear16.png", Png(2, 2, PNG_FORMAT_LINEAR_RGB));
  c.Add("palette.png", Png(6, 2, PNG_FORMAT_RGB_COLORMAP));
  c.Add("one_pixel.png", Png(1, 1, PNG_FORMAT_RGB));
  c.Add("444.jpg", Jpeg(16, 8, TJSAMP_444, 0, TJPF_RGB));
  c.Add("420.jpg", Jpeg(33, 17, TJSAMP_420, 0, TJPF_RGB));
  c.Add("422_progressive.jpg", Jpeg(24, 24, TJSAMP_422, TJFLAG_PROGRESSIVE, TJPF_RGB));
  c.Add("gray.jpg", Jpeg(8, 8, TJSAMP_GRAY, 0, TJPF_GRAY));
  c.Add("cmyk.jpg", Jpeg(8, 8, TJSAMP_444, 0, TJPF_CMYK));
  c.Add("wide_for_scaling.jpg", Jpeg(256, 64, TJSAMP_420, 0, TJPF_RGB));
  c.Add("bomb.png", PngBomb());
  c.Add("bomb.jpg", JpegBomb());
}

}  // namespace
}  // namespace dermfed::fuzz

int main(int argc, char** argv) {
  using namespace dermfed::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out);
  const std::string source_dir = DERMFED_SOURCE_DIR;
  SecAggSeeds(out);
  ModelStateSeeds(out);
  EvaluationSeeds(out);
  ConfigSeeds(out, source_dir);
  AuditSeeds(out);
  DatasetSeeds(out);
  SchemaSeeds(out, source_dir);
  ImageSeeds(out);
  CheckpointSeeds(out);
  std::ofstream(out / "stamp") << "seeds written\n";
  return 0;
}
