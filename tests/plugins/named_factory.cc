// A well-formed plugin whose one factory is named PLUGIN_NAME and makes no provider, built several
// ways by tests/meson.build for the loader's paths
// (tests/providers/shared_key/shared_key_plugin_test.cc):
//   - libportcullis-auth-misnamed.so registers "other-name": loading it for "misnamed" must fail,
//     and loading it twice must fail on the duplicate name;
//   - libportcullis-auth-same-major.so is built with the compiler's minor and patch versions and
//     its version string redefined (-U/-D on the command line), as another release of the same
//     compiler would build it: the loader must accept it;
//   - libportcullis-auth-next-major.so puts NEXT_COMPILER_MAJOR, the compiler's major version plus
//     one, in its fingerprint (redefining the compiler's own major macro would break the C
//     library's headers): the loader must refuse it.
#include "portcullis/provider_registry.h"

#ifdef NEXT_COMPILER_MAJOR
#undef PORTCULLIS_ABI_COMPILER_MAJOR
#define PORTCULLIS_ABI_COMPILER_MAJOR NEXT_COMPILER_MAJOR
#endif

namespace {

class NamedFactory final : public portcullis::AuthProviderFactory {
 public:
  std::string_view name() const override { return PLUGIN_NAME; }
  portcullis::Result<std::unique_ptr<portcullis::AuthProvider>> create(
      const portcullis::ConfigTable& config) const override {
    return config.error("", "a test plugin makes no provider");
  }
};

portcullis::Result<void> registerNamedFactory(portcullis::ProviderRegistry& registry) {
  return registry.add(std::make_unique<NamedFactory>());
}

}  // namespace

PORTCULLIS_PROVIDER_PLUGIN(PLUGIN_NAME, registerNamedFactory)
