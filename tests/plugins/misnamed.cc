// A well-formed plugin found as libportcullis-auth-misnamed.so that registers a provider of
// another name, "other-name": loading it for "misnamed" must fail, and loading it twice must
// fail on the duplicate name (tests/providers/shared_key/shared_key_plugin_test.cc).
#include "portcullis/provider_registry.h"

namespace {

class OtherName final : public portcullis::AuthProviderFactory {
 public:
  std::string_view name() const override { return "other-name"; }
  portcullis::Result<std::unique_ptr<portcullis::AuthProvider>> create(
      const portcullis::ConfigTable& config) const override {
    return config.error("", "a test plugin makes no provider");
  }
};

portcullis::Result<void> registerOtherName(portcullis::ProviderRegistry& registry) {
  return registry.add(std::make_unique<OtherName>());
}

}  // namespace

PORTCULLIS_PROVIDER_PLUGIN("other-name", registerOtherName)
