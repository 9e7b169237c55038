// The team session channel: tagged frames, one reader, sends one at a time in order.
#include "team_channel.h"

#include <deque>
#include <utility>
#include <vector>

namespace portcullis::team {

namespace {

using Timer = asio::steady_timer;

// Waits until `timer` is cancelled (a wake-up). The caller checks its condition again.
asio::awaitable<void> sleepUntilWoken(Timer& timer) {
  timer.expires_at(Timer::time_point::max());
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

Bytes tagged(std::uint8_t tag, ByteView frame) {
  Bytes out;
  out.reserve(frame.size() + 1);
  out.push_back(tag);
  out.insert(out.end(), frame.begin(), frame.end());
  return out;
}

class State final : public TeamSessionChannel, public std::enable_shared_from_this<State> {
 public:
  State(asio::any_io_executor ex, std::unique_ptr<MessageChannel> inner, TeamChannelHandlers h)
      : ex_(ex), inner_(std::move(inner)), handlers_(std::move(h)), repoWake_(ex), readerWake_(ex),
        teamWake_(ex) {}

  void start() {
    asio::co_spawn(ex_, reader(shared_from_this()), asio::detached);
    asio::co_spawn(ex_, teamWriter(shared_from_this()), asio::detached);
  }

  // --- TeamSessionChannel ---------------------------------------------------------------------
  bool sendTeam(Bytes message) override {
    if (closed_) return false;
    teamOutBytes_ += message.size();
    if (teamOutBytes_ > kMaxTeamOutBytes) {
      close("the peer does not read its team messages");
      return false;
    }
    teamOut_.push_back(tagged(kTeamFrameTag, message));
    teamWake_.cancel();
    return true;
  }

  void close(std::string reason) override {
    if (closed_) return;
    closed_ = true;
    if (!failure_) failure_ = Error(Errc::Disconnected, reason);
    inner_->close();
    repoWake_.cancel();
    readerWake_.cancel();
    teamWake_.cancel();
    for (auto& w : sendWaiters_) w->cancel();
    if (handlers_.onEnd) {
      auto onEnd = std::move(handlers_.onEnd);
      handlers_.onEnd = nullptr;
      onEnd(reason);
    }
  }

  bool closed() const override { return closed_; }

  // --- the Repo's side --------------------------------------------------------------------------
  asio::awaitable<Result<void>> sendRepo(std::span<const ByteView> frames) {
    auto self = shared_from_this();
    if (!co_await acquire()) co_return Error(Errc::Disconnected, "the team session is closed");
    std::vector<Bytes> owned;
    owned.reserve(frames.size());
    for (ByteView f : frames) owned.push_back(tagged(kRepoFrameTag, f));
    std::vector<ByteView> views(owned.begin(), owned.end());
    auto sent = co_await inner_->sendMany(views);
    release();
    co_return sent;
  }

  asio::awaitable<Result<Bytes>> receiveRepo() {
    auto self = shared_from_this();
    while (repoIn_.empty()) {
      if (failure_) co_return *failure_;
      co_await sleepUntilWoken(repoWake_);
    }
    Bytes frame = std::move(repoIn_.front());
    repoIn_.pop_front();
    repoInBytes_ -= frame.size();
    readerWake_.cancel();
    co_return frame;
  }

 private:
  // One send at a time on the AEAD channel, first come first served.
  asio::awaitable<bool> acquire() {
    if (!sending_ && sendWaiters_.empty()) {
      sending_ = !closed_;
      co_return !closed_;
    }
    auto me = std::make_shared<Timer>(ex_, Timer::time_point::max());
    sendWaiters_.push_back(me);
    boost::system::error_code ec;
    co_await me->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    // release() handed the channel over (sending_ stays true), or close() woke everyone.
    co_return !closed_;
  }

  void release() {
    if (closed_ || sendWaiters_.empty()) {
      sending_ = false;
      return;
    }
    auto next = std::move(sendWaiters_.front());
    sendWaiters_.pop_front();
    next->cancel();
  }

  static asio::awaitable<void> reader(std::shared_ptr<State> self) {
    while (!self->closed_) {
      auto in = co_await self->inner_->receive();
      if (self->closed_) break;
      if (!in) {
        self->failure_ = in.error();
        self->close(in.error().message());
        break;
      }
      if (in->empty() || (*in)[0] > kTeamFrameTag) {
        self->failure_ = Error(Errc::Malformed, "a team session frame with an unknown tag");
        self->close("a frame with an unknown tag");
        break;
      }
      const std::uint8_t tag = (*in)[0];
      in->erase(in->begin());
      if (tag == kTeamFrameTag) {
        if (self->handlers_.onTeamMessage) {
          // (No temporaries with destructors inside co_await: g++ 12 destroys them twice.)
          auto handled = self->handlers_.onTeamMessage(std::move(*in));
          co_await std::move(handled);
        }
        continue;
      }
      self->repoInBytes_ += in->size();
      self->repoIn_.push_back(std::move(*in));
      self->repoWake_.cancel();
      while (!self->closed_ && self->repoInBytes_ > kMaxRepoReadAhead) {
        co_await sleepUntilWoken(self->readerWake_);
      }
    }
  }

  static asio::awaitable<void> teamWriter(std::shared_ptr<State> self) {
    while (!self->closed_) {
      if (self->teamOut_.empty()) {
        co_await sleepUntilWoken(self->teamWake_);
        continue;
      }
      if (!co_await self->acquire()) break;
      std::vector<Bytes> batch;
      while (!self->teamOut_.empty()) {
        self->teamOutBytes_ -= self->teamOut_.front().size() - 1;
        batch.push_back(std::move(self->teamOut_.front()));
        self->teamOut_.pop_front();
      }
      std::vector<ByteView> views(batch.begin(), batch.end());
      auto sent = co_await self->inner_->sendMany(views);
      self->release();
      if (!sent) {
        self->close(sent.error().message());
        break;
      }
    }
  }

  asio::any_io_executor ex_;
  std::shared_ptr<MessageChannel> inner_;
  TeamChannelHandlers handlers_;
  bool closed_ = false;
  std::optional<Error> failure_;
  // Repo frames read ahead.
  std::deque<Bytes> repoIn_;
  std::size_t repoInBytes_ = 0;
  Timer repoWake_;
  Timer readerWake_;
  // Sends.
  bool sending_ = false;
  std::deque<std::shared_ptr<Timer>> sendWaiters_;
  std::deque<Bytes> teamOut_;  // tagged
  std::size_t teamOutBytes_ = 0;
  Timer teamWake_;
};

// What the Repo holds: closing it (or dropping it) closes the session.
class RepoSide final : public MessageChannel {
 public:
  explicit RepoSide(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~RepoSide() override { state_->close("the Repo closed the session"); }
  RepoSide(const RepoSide&) = delete;
  RepoSide& operator=(const RepoSide&) = delete;

  asio::awaitable<Result<void>> send(ByteView frame) override {
    auto state = state_;
    const ByteView one[] = {frame};
    co_return co_await state->sendRepo(one);
  }
  asio::awaitable<Result<void>> sendMany(std::span<const ByteView> frames) override {
    auto state = state_;
    co_return co_await state->sendRepo(frames);
  }
  asio::awaitable<Result<Bytes>> receive() override {
    auto state = state_;
    co_return co_await state->receiveRepo();
  }
  void close() override { state_->close("the Repo closed the session"); }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

TeamChannelPair makeTeamChannel(asio::any_io_executor executor,
                                std::unique_ptr<MessageChannel> inner,
                                TeamChannelHandlers handlers) {
  auto state = std::make_shared<State>(executor, std::move(inner), std::move(handlers));
  state->start();
  return TeamChannelPair{.repo = std::make_unique<RepoSide>(state), .provider = state};
}

}  // namespace portcullis::team
