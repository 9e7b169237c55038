#!/usr/bin/env python3
"""Process test: a write the server refuses is reported as refused.

`portcullis serve` with the `team` provider and `portcullis doc` as a team member, real processes
over TCP loopback (port 0). Once the member is made read-only, `doc set` must fail at once with
"refused by the server" and a non-zero exit, not wait out --timeout and report that the server
"did not confirm storing the change in time"; the accept path (a write before that) succeeds.

Run by meson (suite `process`) with PORTCULLIS set to the built executable and
PORTCULLIS_PLUGIN_PATH to the folder of the team plugin. Every wait is bounded.
"""
import json
import time
import unittest

from server_process import ServerProcess, run


class RefusedWriteTest(ServerProcess, unittest.TestCase):
    def setUp(self):
        self.make_folder("portcullis-refused-")

    def serve(self, state):
        config = self.path("server.toml")
        with open(config, "w") as f:
            f.write(f'[network]\nlisten = "127.0.0.1:0"\n[storage]\npath = "{self.path("data")}"\n'
                    f'[auth]\nprovider = "team"\n[auth.team]\nstate = "{self.path(state)}"\n')
        return self.serve_config(config)["listening"][0]

    def test_a_write_by_a_read_only_member_is_reported_refused_at_once(self):
        alice = self.path("alice")
        run("team", "init", "--state", alice, "--name", "acme", "--user", "alice", "--json")
        run("team", "export", "--state", alice, self.path("acme.export"), "--json")
        _, out, _ = run("team", "host", "--state", self.path("server"), "--from",
                        self.path("acme.export"), "--json")
        server_key = json.loads(out)["server"]
        address = self.serve("server")
        run("team", "server", "add", server_key, "--state", alice, "--connect", address, "--json")

        client = self.path("alice.toml")
        with open(client, "w") as f:
            f.write(f'[auth]\nprovider = "team"\n[auth.team]\nstate = "{alice}"\n')

        def doc(verb, *args, timeout_s="20", check=True):
            return run("doc", verb, "--config", client, "--connect", address, "--timeout",
                       timeout_s, *args, check=check)

        # The accept path: alice may write.
        _, out, _ = doc("new", "--json")
        url = json.loads(out)["url"]
        doc("set", url, "/before", '"stored"')

        # Made read-only, her next write is refused, and she hears so long before --timeout.
        run("team", "access", "set", "*", "member:alice", "read", "--state", alice, "--connect",
            address, "--json")
        start = time.monotonic()
        code, out, err = doc("set", url, "/after", '"refused"', check=False)
        elapsed = time.monotonic() - start
        self.assertEqual(code, 1, f"{out} {err} | server: {self.log()}")
        self.assertIn("refused by the server", err)
        self.assertNotIn("did not confirm", err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertLess(elapsed, 15, "it waited for the timeout instead of hearing the refusal")

        # She may still read, and the refused value is nowhere.
        _, out, _ = doc("get", url, "--json")
        content = json.loads(out)
        self.assertEqual(content.get("before"), "stored")
        self.assertNotIn("after", content)


if __name__ == "__main__":
    unittest.main(verbosity=2)
