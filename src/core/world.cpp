#include "core/world.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include "core/error.h"

extern char** environ;

namespace lingshu {

namespace {

const char* variable(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

int integer_variable(const char* name, int fallback, int min) {
  const char* text = variable(name);
  if (text == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > 1 << 20) {
    throw UserError(fmt::format("the environment variable {}={} is not an integer >= {}", name, text, min));
  }
  return static_cast<int>(value);
}

// This program's own arguments, as the kernel recorded them.
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t begin = 0; begin < all.size();) {
    const size_t end = all.find('\0', begin);
    args.push_back(all.substr(begin, end - begin));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  if (args.empty()) throw UserError("--nproc: cannot read this program's arguments from /proc/self/cmdline");
  return args;
}

void set_variable(const char* name, const std::string& value) {
  ::setenv(name, value.c_str(), 1);
}

void set_rank_variables(int rank, int size, int port) {
  set_variable("RANK", std::to_string(rank));
  set_variable("LOCAL_RANK", std::to_string(rank));
  set_variable("WORLD_SIZE", std::to_string(size));
  set_variable("LOCAL_WORLD_SIZE", std::to_string(size));
  set_variable("MASTER_ADDR", "127.0.0.1");
  set_variable("MASTER_PORT", std::to_string(port));
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

// The last "lingshu: error: " message a worker wrote to its stderr file, without the prefix.
std::string last_error(const std::filesystem::path& log) {
  std::ifstream in(log);
  std::string line, message;
  constexpr std::string_view kPrefix = "lingshu: error: ";
  while (std::getline(in, line)) {
    if (line.starts_with(kPrefix)) message = line.substr(kPrefix.size());
  }
  return message;
}

}  // namespace

bool joined_by_environment() {
  return variable("RANK") != nullptr || (variable("SLURM_PROCID") != nullptr && variable("MASTER_ADDR"));
}

WorldInfo world_from_environment() {
  WorldInfo w;
  if (variable("RANK") != nullptr) {
    w.rank = integer_variable("RANK", 0, 0);
    w.size = integer_variable("WORLD_SIZE", 1, 1);
    w.local_size = integer_variable("LOCAL_WORLD_SIZE", w.size, 1);
  } else if (variable("SLURM_PROCID") != nullptr && variable("MASTER_ADDR") != nullptr) {
    w.rank = integer_variable("SLURM_PROCID", 0, 0);
    w.size = integer_variable("SLURM_NTASKS", 1, 1);
    w.local_size = integer_variable("SLURM_NTASKS_PER_NODE", 1, 1);
  } else {
    return w;
  }
  if (w.rank >= w.size) {
    throw UserError(
        fmt::format("the rank {} is not below the world size {} (RANK/WORLD_SIZE)", w.rank, w.size));
  }
  if (const char* addr = variable("MASTER_ADDR")) w.master_addr = addr;
  w.master_port = integer_variable("MASTER_PORT", w.master_port, 1);
  return w;
}

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw UserError(fmt::format("--nproc: cannot open a socket ({})", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!ok) throw UserError(fmt::format("--nproc: no free TCP port on 127.0.0.1 ({})", std::strerror(errno)));
  return ntohs(address.sin_port);
}

LocalWorkers::LocalWorkers(int n_processes, int port) {
  const auto args = own_arguments();
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (int rank = 1; rank < n_processes; ++rank) {
    set_rank_variables(rank, n_processes, port);
    // A worker's stderr goes to a file, so that rank 0 reports its error once, in one line.
    logs_.push_back(std::filesystem::temp_directory_path() /
                    fmt::format("lingshu-worker-{}-{}.log", ::getpid(), rank));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, logs_.back().c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = 0;
    const int error = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      stop();
      throw UserError(
          fmt::format("--nproc: cannot start worker process {} ({})", rank, std::strerror(error)));
    }
    pids_.push_back(pid);
  }
  set_rank_variables(0, n_processes, port);
}

LocalWorkers::~LocalWorkers() {
  stop();
  for (const auto& log : logs_) {
    std::error_code ignored;
    std::filesystem::remove(log, ignored);
  }
}

std::string LocalWorkers::describe(size_t i, int status) const {
  const std::string message = last_error(logs_[i]);
  return fmt::format("worker process {} (rank {}) {}{}", std::abs(pids_[i]), i + 1, how_it_ended(status),
                     message.empty() ? "" : ": " + message);
}

void LocalWorkers::stop() {
  for (const pid_t pid : pids_) {
    if (pid > 0) ::kill(pid, SIGTERM);
  }
  for (const pid_t pid : pids_) {
    int status = 0;
    if (pid > 0) ::waitpid(pid, &status, 0);
  }
  pids_.clear();
}

std::string LocalWorkers::failures(int grace_ms, const std::string& known) {
  std::string out;
  bool any = false;
  for (int waited = 0; !any && waited <= grace_ms; waited += 50) {
    for (size_t i = 0; i < pids_.size(); ++i) {
      int status = 0;
      if (pids_[i] <= 0 || ::waitpid(pids_[i], &status, WNOHANG) != pids_[i]) continue;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        any = true;
        if (known.empty() || last_error(logs_[i]) != known)
          out += (out.empty() ? "" : "; ") + describe(i, status);
      }
      pids_[i] = -pids_[i];  // reaped
    }
    if (!any) ::usleep(50'000);
  }
  return out;
}

void LocalWorkers::wait_all() {
  std::string failure;
  for (size_t i = 0; i < pids_.size(); ++i) {
    int status = 0;
    if (pids_[i] <= 0 || ::waitpid(pids_[i], &status, 0) < 0) continue;
    if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && failure.empty()) failure = describe(i, status);
  }
  pids_.clear();
  if (!failure.empty()) throw UserError(failure);
}

}  // namespace lingshu
