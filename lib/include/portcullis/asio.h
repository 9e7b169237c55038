// portcullis/asio.h — the one way into Boost.Asio.
//
// Boost 1.74's Asio fails to compile under C++20 with g++ 12 unless <utility> comes first
// (chriskohlhoff/asio#944), so every file includes Asio through this header. It also names the
// namespace `portcullis::asio`, so signatures read as in the design.
#pragma once

#include <utility>

#include <boost/asio.hpp>

namespace portcullis {
namespace asio = boost::asio;
}  // namespace portcullis
