// portcullis/asio.h — the one way into Boost.Asio.
//
// Boost 1.74's Asio fails to compile under C++20 with g++ 12 unless <utility> comes first
// (chriskohlhoff/asio#944), so every file includes Asio through this header. It also names the
// namespace `portcullis::asio`, so signatures read as in the design.
//
// That Asio finds clang's coroutines only as the Coroutines TS (<experimental/coroutine>), which
// clang 16 with libstdc++ does not have: without the two macros below it declares no
// asio::awaitable. C++20's coroutines are there (__cpp_impl_coroutine), so they are named here,
// before Asio is read, for a program built with clang.
#pragma once

#include <utility>

#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#define BOOST_ASIO_HAS_STD_COROUTINE 1
#endif

#include <boost/asio.hpp>

namespace portcullis {
namespace asio = boost::asio;
}  // namespace portcullis
