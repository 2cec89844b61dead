#include "train/distributed.h"

#include <fmt/format.h>

#include <chrono>
#include <functional>

#include "core/error.h"
#include "train/trainer.h"

#ifdef LINGSHU_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace lingshu {

#ifdef LINGSHU_HAVE_GLOO

namespace {

// How long ranks wait for each other: to meet at the store, and in any one collective (rank 0
// validates and writes checkpoints while the others wait at the next step).
constexpr std::chrono::minutes kRendezvousTimeout{5};
constexpr std::chrono::minutes kCollectiveTimeout{30};
// Elements per flat bucket (16 MiB of fp32).
constexpr int64_t kBucketElements = int64_t{1} << 22;

// Runs `collective` on `tensors` packed into flat buckets of one dtype, and unpacks the results.
void over_buckets(const std::vector<torch::Tensor>& tensors,
                  const std::function<void(std::vector<torch::Tensor>& bucket)>& collective) {
  size_t begin = 0;
  while (begin < tensors.size()) {
    size_t end = begin;
    int64_t elements = 0;
    while (end < tensors.size() && tensors[end].scalar_type() == tensors[begin].scalar_type() &&
           (end == begin || elements + tensors[end].numel() <= kBucketElements)) {
      elements += tensors[end].numel();
      ++end;
    }
    std::vector<torch::Tensor> flat_parts;
    for (size_t i = begin; i < end; ++i) flat_parts.push_back(tensors[i].reshape({-1}));
    std::vector<torch::Tensor> bucket{torch::cat(flat_parts)};
    collective(bucket);
    int64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(bucket[0].slice(0, offset, offset + n).view(tensors[i].sizes()));
      offset += n;
    }
    begin = end;
  }
}

}  // namespace

bool multi_process_available() {
  return true;
}

struct Collective::Impl {
  WorldInfo world;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;

  // Another rank stopped (killed, or failed with its own message): say so once, clearly.
  [[noreturn]] void lost_contact(const std::exception& e) const {
    std::string detail = e.what();
    detail = detail.substr(0, detail.find('\n'));
    throw UserError(fmt::format(
        "data-parallel run: rank {} of {} lost contact with the other processes ({}); one of them "
        "stopped: see its message",
        world.rank, world.size, detail));
  }
};

namespace {

bool is_loopback(const std::string& address) {
  return address == "localhost" || address.starts_with("127.");
}

}  // namespace

Collective::Collective(const WorldInfo& world) : impl_(std::make_unique<Impl>()) {
  impl_->world = world;
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(world.master_port);
    store_options.isServer = world.is_root();
    store_options.numWorkers = static_cast<size_t>(world.size);
    store_options.waitWorkers = true;
    store_options.timeout = kRendezvousTimeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, store_options);
  } catch (const std::exception& e) {
    throw UserError(fmt::format(
        "data-parallel run: rank {} could not meet the other {} processes at the c10d store "
        "{}:{} within {} minutes ({}); check MASTER_ADDR/MASTER_PORT and that every rank was started",
        world.rank, world.size - 1, world.master_addr, world.master_port, kRendezvousTimeout.count(),
        std::string(e.what()).substr(0, std::string(e.what()).find('\n'))));
  }
  auto options = c10d::ProcessGroupGloo::Options::create(kCollectiveTimeout);
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
  } else if (is_loopback(world.master_addr)) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  try {
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, world.rank, world.size, options);
  } catch (const std::exception& e) {
    impl_->lost_contact(e);
  }
}

Collective::~Collective() = default;

int Collective::rank() const {
  return impl_->world.rank;
}
int Collective::size() const {
  return impl_->world.size;
}

void Collective::broadcast_from_root(const std::vector<torch::Tensor>& tensors) {
  try {
    over_buckets(tensors, [&](std::vector<torch::Tensor>& bucket) {
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      impl_->group->broadcast(bucket, options)->wait();
    });
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    impl_->lost_contact(e);
  }
}

void Collective::sum_over_ranks(const std::vector<torch::Tensor>& tensors) {
  try {
    over_buckets(tensors,
                 [&](std::vector<torch::Tensor>& bucket) { impl_->group->allreduce(bucket)->wait(); });
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    impl_->lost_contact(e);
  }
}

#else  // no Gloo in this build

bool multi_process_available() {
  return false;
}

struct Collective::Impl {
  WorldInfo world;
};

Collective::Collective(const WorldInfo& world) : impl_(std::make_unique<Impl>()) {
  throw UserError(
      "this lingshu was built without Gloo, so it cannot run on several processes; install "
      "libgloo-dev (scripts/install-deps.sh) and rebuild");
}
Collective::~Collective() = default;
int Collective::rank() const {
  return impl_->world.rank;
}
int Collective::size() const {
  return impl_->world.size;
}
void Collective::broadcast_from_root(const std::vector<torch::Tensor>&) {}
void Collective::sum_over_ranks(const std::vector<torch::Tensor>&) {}

#endif

}  // namespace lingshu
