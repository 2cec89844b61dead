#include "data/anndata.h"

namespace lingshu {

AnnData AnnData::select_cells(const std::vector<int64_t>& rows) const {
  AnnData out;
  out.X = X.select_rows(rows);
  out.obs = obs.select_rows(rows);
  out.var = var;
  out.uns_strings = uns_strings;
  return out;
}

}  // namespace lingshu
