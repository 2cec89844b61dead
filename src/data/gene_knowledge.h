#pragma once
// Gene knowledge (README "Perturbations no data set measured"): a vector per gene symbol from
// outside the data, e.g. its Gene Ontology profile (scripts/gene_knowledge.sh). A perturbation's
// target genes are embedded from these vectors whether or not the training file measures them,
// so a perturbation never seen in training still has a token that says what it is like.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lingshu {

struct GeneKnowledge {
  std::vector<std::string> genes;  // symbols, each once
  int64_t dim = 0;
  std::vector<float> values;  // genes x dim, row-major
};

// Reads a tab-separated file: one gene symbol and `dim` numbers per line, the same `dim` on every
// line. Lines starting with '#' are comments; a first line whose second field is not a number is
// a header. Throws UserError naming the file and line of the first problem (a missing file, a
// line with another number of fields, a field that is not a finite number, a gene named twice, no
// genes at all).
GeneKnowledge read_gene_knowledge(const std::filesystem::path& path);

}  // namespace lingshu
