// A shared object named like a provider plugin that exports no portcullis_provider_entry: the
// loader must refuse it (tests/providers/shared_key/shared_key_plugin_test.cc).
extern "C" __attribute__((visibility("default"))) int not_a_provider() { return 0; }
