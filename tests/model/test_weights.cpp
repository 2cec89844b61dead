#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/weights.h"
#include "test_support.h"

namespace lingshu {
namespace {

ModelConfig small_shape() {
  auto c = ModelConfig::from_preset("tiny");
  c.n_genes = 45;
  c.patch_size = 8;
  c.n_tokens = 10;
  return c;
}

TEST(Weights, SaveThenLoadGivesIdenticalOutputs) {
  testing::TempDir dir;
  torch::manual_seed(4);
  MaskedDiffusionModel model(small_shape());
  model->eval();
  save_weights(dir.path(), model);
  torch::manual_seed(99);  // a different initialisation, overwritten by the load
  auto loaded = load_weights(dir.path(), small_shape());
  const auto tokens = torch::randint(0, 11, {3, small_shape().n_positions()}, torch::kLong);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(tokens), loaded->forward(tokens)));
}

TEST(Weights, ShapeMismatchOrMissingFileIsAUserError) {
  testing::TempDir dir;
  EXPECT_THROW(load_weights(dir.path(), small_shape()), UserError);
  MaskedDiffusionModel model(small_shape());
  save_weights(dir.path(), model);
  auto wider = small_shape();
  wider.d_model = 32;
  EXPECT_THROW(load_weights(dir.path(), wider), UserError);
}

TEST(Weights, ATruncatedOrDamagedFileIsAUserError) {
  testing::TempDir dir;
  MaskedDiffusionModel model(small_shape());
  save_weights(dir.path(), model);
  const auto path = dir / "weights.safetensors";
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 100);  // the last tensor's bytes cut short
  EXPECT_THROW(load_weights(dir.path(), small_shape()), UserError);
  std::filesystem::resize_file(path, 4);  // not even the header length
  EXPECT_THROW(load_weights(dir.path(), small_shape()), UserError);
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      << std::string("\x10\0\0\0\0\0\0\0not json here!!!", 24);
  EXPECT_THROW(load_weights(dir.path(), small_shape()), UserError);
}

TEST(Weights, SafetensorsIsReadableFromPythonWithTheSameValues) {
  if (!testing::python_has("numpy")) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  testing::TempDir dir;
  torch::manual_seed(5);
  MaskedDiffusionModel model(small_shape());
  save_weights(dir.path(), model);
  // Parse the file by hand (the format is tiny), as a Python user without the package would.
  const auto script = fmt::format(R"(
import json, struct, numpy as np
raw = open('{}', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
for name in ['head.weight', 'blocks.1.mlp_in.bias', 'gene_emb']:
    h = header[name]
    assert h['dtype'] == 'F32', h
    a, b = h['data_offsets']
    t = np.frombuffer(data[a:b], dtype='<f4').reshape(h['shape'])
    print(name, ' '.join(str(s) for s in t.shape), repr(float(t.astype(np.float64).sum())), repr(float(t.flat[-1])))
print('tensors', len(header))
)",
                                  (dir / "weights.safetensors").string());
  const auto result = testing::run_python(script);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::istringstream lines(result.output);
  const auto params = model->named_parameters();
  for (const std::string name : {"head.weight", "blocks.1.mlp_in.bias", "gene_emb"}) {
    std::string got_name;
    lines >> got_name;
    ASSERT_EQ(got_name, name);
    const auto tensor = params[name];
    for (int64_t d = 0; d < tensor.dim(); ++d) {
      int64_t size = 0;
      lines >> size;
      EXPECT_EQ(size, tensor.size(d)) << name;
    }
    double sum = 0, last = 0;
    lines >> sum >> last;
    EXPECT_NEAR(sum, tensor.to(torch::kDouble).sum().item<double>(), 1e-9) << name;
    EXPECT_EQ(static_cast<float>(last), tensor.flatten()[-1].item<float>()) << name;
  }
  std::string word;
  size_t count = 0;
  lines >> word >> count;
  EXPECT_EQ(count, params.size());
}

}  // namespace
}  // namespace lingshu
