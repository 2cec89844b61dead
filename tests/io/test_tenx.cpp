// 10x Matrix Market folders written here (v3 gzip, v2 plain) read back as the matrix they were
// written from; broken folders are refused with one clear line; read_counts_file dispatches.
#include <fmt/format.h>
#include <zlib.h>

#include <fstream>

#include "core/error.h"
#include "io/h5ad.h"
#include "io/read_counts.h"
#include "io/tenx.h"
#include "io_test_util.h"

namespace lingshu {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

void write_text(const fs::path& path, const std::string& text) {
  if (path.extension() == ".gz") {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << text;
  }
}

// Cells x genes matrix the folders store (as genes x cells, 1-based, in shuffled order).
const std::vector<std::vector<float>> kCells = {
    {0, 1, 0, 2}, {3, 0, 0, 0}, {0, 0, 0, 0}, {4, 5, 6, 0}, {0, 0, 0, 9}};

std::string mtx_text(const std::string& field = "integer") {
  std::string entries;
  int n = 0;
  // Gene-major order, the opposite of the cell-major CSR we build, to exercise the transpose.
  for (size_t g = 4; g-- > 0;) {
    for (size_t c = 0; c < kCells.size(); ++c) {
      if (kCells[c][g] != 0) {
        entries += fmt::format("{} {} {}\n", g + 1, c + 1, kCells[c][g]);
        ++n;
      }
    }
  }
  return fmt::format("%%MatrixMarket matrix coordinate {} general\n%metadata_json: {{}}\n4 5 {}\n{}", field,
                     n, entries);
}

const char* kFeaturesV3 =
    "ENSG01\tCD3E\tGene Expression\nENSG02\tMS4A1\tGene Expression\nENSG03\tCD3E\tGene Expression\n"
    "ENSG04\tCD3E-1\tAntibody Capture\n";
const char* kBarcodes = "AAAC-1\nAAAG-1\nCCCT-1\nGGGA-1\nTTTA-1\n";

void write_v3(const fs::path& folder) {
  fs::create_directories(folder);
  write_text(folder / "matrix.mtx.gz", mtx_text());
  write_text(folder / "features.tsv.gz", kFeaturesV3);
  write_text(folder / "barcodes.tsv.gz", kBarcodes);
}

void write_v2(const fs::path& folder) {
  fs::create_directories(folder);
  write_text(folder / "matrix.mtx", mtx_text("real"));
  write_text(folder / "genes.tsv", "ENSG01\tCD3E\nENSG02\tMS4A1\nENSG03\tNKG7\nENSG04\tGAPDH\n");
  write_text(folder / "barcodes.tsv",
             "AAAC-1\r\nAAAG-1\r\nCCCT-1\r\nGGGA-1\r\nTTTA-1\r\n");  // Windows endings
}

std::string tenx_error(const fs::path& folder) {
  try {
    read_10x_mtx(folder);
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << folder << " was read without error";
  return "";
}

TEST(Tenx, V3GzipFolder) {
  TempDir dir;
  write_v3(dir / "v3");
  const AnnData a = read_10x_mtx(dir / "v3");
  EXPECT_EQ(testing::dense(a.X), kCells);
  a.X.validate("10x");
  EXPECT_EQ(a.obs.index, (std::vector<std::string>{"AAAC-1", "AAAG-1", "CCCT-1", "GGGA-1", "TTTA-1"}));
  // The second CD3E becomes CD3E-2 because CD3E-1 is already a name (as anndata does).
  EXPECT_EQ(a.var.index, (std::vector<std::string>{"CD3E", "MS4A1", "CD3E-2", "CD3E-1"}));
  EXPECT_EQ(a.var.require("gene_ids", "var").strings,
            (std::vector<std::string>{"ENSG01", "ENSG02", "ENSG03", "ENSG04"}));
  const Column& types = a.var.require("feature_types", "var");
  EXPECT_EQ(types.label(0), "Gene Expression");
  EXPECT_EQ(types.label(3), "Antibody Capture");
}

TEST(Tenx, V2PlainFolder) {
  TempDir dir;
  write_v2(dir / "v2");
  const AnnData a = read_10x_mtx(dir / "v2");
  EXPECT_EQ(testing::dense(a.X), kCells);
  EXPECT_EQ(a.var.index, (std::vector<std::string>{"CD3E", "MS4A1", "NKG7", "GAPDH"}));
  EXPECT_EQ(a.obs.index.back(), "TTTA-1");
  EXPECT_EQ(a.var.find("feature_types"), nullptr);
}

TEST(Tenx, DuplicateEntriesAreSummed) {
  TempDir dir;
  write_v3(dir / "f");
  write_text(dir / "f" / "matrix.mtx.gz",
             "%%MatrixMarket matrix coordinate integer general\n4 5 3\n2 1 1\n2 1 2\n4 5 9\n");
  const AnnData a = read_10x_mtx(dir / "f");
  EXPECT_EQ(a.X.dense_row(0), (std::vector<float>{0, 3, 0, 0}));
  EXPECT_EQ(a.X.dense_row(4), (std::vector<float>{0, 0, 0, 9}));
  EXPECT_EQ(a.X.nnz(), 2);
}

TEST(Tenx, MakeUniqueNamesMatchesAnndata) {
  const std::vector<std::string> names = {"A", "B", "A", "A-1", "A", "B", "C", "A-2", "A"};
  const auto ours = make_unique_names(names);
  if (!testing::python_has("anndata")) GTEST_SKIP() << "anndata not available";
  const auto theirs = testing::python_json(R"(
import json, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from anndata.utils import make_index_unique
print(json.dumps(list(make_index_unique(pd.Index()" +
                                           nlohmann::json(names).dump() + R"()))))
)");
  EXPECT_EQ(ours, theirs.get<std::vector<std::string>>());
}

TEST(Tenx, BrokenFolders) {
  TempDir dir;
  const fs::path f = dir / "f";
  write_v3(f);
  const auto rewrite = [&](const std::string& name, const std::string& text) {
    write_v3(f);
    write_text(f / name, text);
  };

  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix array real general\n4 5\n");
  EXPECT_HAS(tenx_error(f),
             "is not supported; expected '%%MatrixMarket matrix coordinate integer|real general'");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate pattern general\n4 5 1\n1 1\n");
  EXPECT_HAS(tenx_error(f), "is not supported");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate integer general\n4 5 1\n5 1 3\n");
  EXPECT_HAS(tenx_error(f), "entry (5, 1) is outside the 4 x 5 matrix");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate integer general\n4 5 1\n1 0 3\n");
  EXPECT_HAS(tenx_error(f), "entry (1, 0) is outside");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate real general\n4 5 1\n1 1 -2\n");
  EXPECT_HAS(tenx_error(f), "count -2 is not a non-negative number");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate real general\n4 5 1\n1 1 nan\n");
  EXPECT_HAS(tenx_error(f), "count nan is not a non-negative number");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate integer general\n4 5 3\n1 1 3\n");
  EXPECT_HAS(tenx_error(f), "has 1 entries but its size line announces 3");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate integer general\n4 5 1\n1 1 3\n2 2 2\n");
  EXPECT_HAS(tenx_error(f), "more entries than the 1");
  rewrite("matrix.mtx.gz", "%%MatrixMarket matrix coordinate integer general\n4 5 1\n1 1 three\n");
  EXPECT_HAS(tenx_error(f), "line 3: expected 'gene cell count'");
  rewrite("matrix.mtx.gz", "");
  EXPECT_HAS(tenx_error(f), "is empty");
  rewrite("features.tsv.gz", "ENSG01\tCD3E\tGene Expression\n");
  EXPECT_HAS(tenx_error(f), "lists 1 features but");
  rewrite("barcodes.tsv.gz", "AAAC-1\n");
  EXPECT_HAS(tenx_error(f), "lists 1 barcodes but");

  write_v3(f);
  fs::remove(f / "barcodes.tsv.gz");
  EXPECT_HAS(tenx_error(f), "has no barcodes.tsv(.gz)");
  EXPECT_HAS(tenx_error(dir / "missing"), "is not a folder");
}

TEST(Tenx, TruncatedGzipIsReported) {
  TempDir dir;
  const fs::path f = dir / "f";
  write_v3(f);
  std::string big = "%%MatrixMarket matrix coordinate integer general\n4 5 20000\n";
  for (int i = 0; i < 20000; ++i) big += fmt::format("{} {} {}\n", i % 4 + 1, i % 5 + 1, i % 7);
  write_text(f / "matrix.mtx.gz", big);
  fs::resize_file(f / "matrix.mtx.gz", fs::file_size(f / "matrix.mtx.gz") / 2);
  const std::string msg = tenx_error(f);
  EXPECT_HAS(msg, "matrix.mtx.gz");
}

TEST(ReadCounts, DispatchesOnFolderOrFile) {
  TempDir dir;
  write_v3(dir / "tenx");
  const AnnData from_folder = read_counts_file(dir / "tenx");
  EXPECT_EQ(testing::dense(from_folder.X), kCells);

  write_h5ad(dir / "cells.h5ad", from_folder);
  const AnnData from_file = read_counts_file(dir / "cells.h5ad");
  EXPECT_TRUE(testing::same_matrix(from_file.X, from_folder.X));
  EXPECT_EQ(from_file.var.index, from_folder.var.index);

  const auto error_of = [](const fs::path& p, const std::string& layer = "") -> std::string {
    try {
      read_counts_file(p, layer);
    } catch (const UserError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_HAS(error_of(dir / "cells.h5ad", "spliced"), "layer 'spliced' is not in");
  EXPECT_HAS(error_of(dir / "tenx", "counts"), "is a 10x folder, which has no layers");
  EXPECT_HAS(error_of(dir / "nothing.h5ad"), "does not exist");
  EXPECT_HAS(error_of(dir / "tenx" / "matrix.mtx.gz"), "pass its folder instead");
  write_text(dir / "table.csv", "a,b\n1,2\n");
  EXPECT_HAS(error_of(dir / "table.csv"), "is a text table");
  write_text(dir / "odd.bin", "garbage");
  EXPECT_HAS(error_of(dir / "odd.bin"), "not an HDF5 file");
}

}  // namespace
}  // namespace lingshu
