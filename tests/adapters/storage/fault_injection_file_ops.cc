// The crash-simulating FileOps.
#include "fault_injection_file_ops.h"

#include <stdexcept>

namespace portcullis::test {

namespace fs = std::filesystem;

FaultInjectionFileOps::FaultInjectionFileOps(fs::path root, PosixFileOps real)
    : root_(std::move(root)), real_(real) {
  if (!fs::is_directory(root_) || !fs::is_empty(root_)) {
    throw std::logic_error("FaultInjectionFileOps needs an existing, empty root");
  }
  nodes_.push_back(Node{.isDir = true});
}

void FaultInjectionFileOps::simulateCrash() {
  std::lock_guard lock(mutex_);
  for (const fs::directory_entry& entry : fs::directory_iterator(root_)) {
    fs::remove_all(entry.path());
  }
  std::vector<Node> survivors(1, Node{.isDir = true});
  restore(0, root_, survivors, 0);
  nodes_ = std::move(survivors);
  callsLeft_.reset();
}

void FaultInjectionFileOps::crashAfter(std::size_t count) {
  std::lock_guard lock(mutex_);
  callsLeft_ = count;
}

void FaultInjectionFileOps::restore(std::size_t from, const fs::path& path,
                                    std::vector<Node>& survivors, std::size_t to) {
  for (const auto& [name, child] : nodes_[from].durableEntries) {
    fs::path childPath = path / name;
    Node copy{.isDir = nodes_[child].isDir};
    if (copy.isDir) {
      fs::create_directory(childPath);
    } else {
      copy.data = copy.durableData = nodes_[child].durableData;
      if (auto written = real_.writeFile(childPath, copy.data); !written) {
        throw std::runtime_error("restoring a file failed: " + written.error().message());
      }
    }
    survivors.push_back(std::move(copy));
    std::size_t index = survivors.size() - 1;
    survivors[to].entries[name] = survivors[to].durableEntries[name] = index;
    if (survivors[index].isDir) restore(child, childPath, survivors, index);
  }
}

Result<void> FaultInjectionFileOps::admit() {
  if (!callsLeft_) return {};
  if (*callsLeft_ == 0) return Error(Errc::Io, "simulated crash");
  --*callsLeft_;
  return {};
}

std::pair<std::size_t, std::string> FaultInjectionFileOps::locate(const fs::path& path) const {
  return {resolve(path.parent_path()), path.filename().string()};
}

std::size_t FaultInjectionFileOps::resolve(const fs::path& path) const {
  fs::path relative = path.lexically_relative(root_);
  if (relative.empty() || *relative.begin() == "..") {
    throw std::logic_error("FaultInjectionFileOps was given a path outside its root");
  }
  std::size_t node = 0;
  for (const fs::path& part : relative) {
    if (part == ".") continue;
    // The real call succeeded, so the model must know the path; if not, something changed the
    // tree behind the model's back.
    node = nodes_.at(node).entries.at(part.string());
  }
  return node;
}

std::size_t FaultInjectionFileOps::addNode(Node node) {
  nodes_.push_back(std::move(node));
  return nodes_.size() - 1;
}

template <typename Real, typename Model>
Result<void> FaultInjectionFileOps::mutate(Real real, Model model) {
  std::lock_guard lock(mutex_);
  if (auto allowed = admit(); !allowed) return allowed;
  if (auto done = real(); !done) return done;
  model();
  return {};
}

Result<void> FaultInjectionFileOps::writeFile(const fs::path& path, ByteView data) {
  return mutate([&] { return real_.writeFile(path, data); },
                [&] {
                  auto [dir, name] = locate(path);
                  Bytes contents(data.begin(), data.end());
                  // Truncating an existing file keeps its node, and with it the data last synced.
                  if (auto found = nodes_[dir].entries.find(name);
                      found != nodes_[dir].entries.end()) {
                    nodes_[found->second].data = std::move(contents);
                  } else {
                    std::size_t file = addNode(Node{.data = std::move(contents)});
                    nodes_[dir].entries[name] = file;
                  }
                });
}

Result<void> FaultInjectionFileOps::syncFile(const fs::path& path) {
  return mutate([&] { return real_.syncFile(path); },
                [&] {
                  Node& file = nodes_[resolve(path)];
                  file.durableData = file.data;
                });
}

Result<void> FaultInjectionFileOps::rename(const fs::path& from, const fs::path& to) {
  return mutate([&] { return real_.rename(from, to); },
                [&] {
                  auto [fromDir, fromName] = locate(from);
                  auto [toDir, toName] = locate(to);
                  std::size_t moved = nodes_[fromDir].entries.at(fromName);
                  nodes_[fromDir].entries.erase(fromName);
                  nodes_[toDir].entries[toName] = moved;
                });
}

Result<void> FaultInjectionFileOps::unlink(const fs::path& path) {
  return mutate([&] { return real_.unlink(path); }, [&] { forget(path); });
}

Result<void> FaultInjectionFileOps::makeDir(const fs::path& path) {
  return mutate([&] { return real_.makeDir(path); },
                [&] {
                  auto [parent, name] = locate(path);
                  std::size_t dir = addNode(Node{.isDir = true});
                  nodes_[parent].entries[name] = dir;
                });
}

Result<void> FaultInjectionFileOps::removeDir(const fs::path& path) {
  return mutate([&] { return real_.removeDir(path); }, [&] { forget(path); });
}

Result<void> FaultInjectionFileOps::syncDir(const fs::path& path) {
  return mutate([&] { return real_.syncDir(path); },
                [&] {
                  Node& dir = nodes_[resolve(path)];
                  dir.durableEntries = dir.entries;
                });
}

void FaultInjectionFileOps::forget(const fs::path& path) {
  auto [dir, name] = locate(path);
  nodes_[dir].entries.erase(name);
}

}  // namespace portcullis::test
