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
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

EXE = os.environ.get("PORTCULLIS", "portcullis")


def run(*args, timeout=60, check=True):
    """Runs the tool; returns (exit code, stdout, stderr)."""
    p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"portcullis {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.returncode, p.stdout, p.stderr


class RefusedWriteTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portcullis-refused-")
        self.server = None
        self.server_log = None

    def tearDown(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGKILL)
            self.server.wait(timeout=20)
        if self.server:
            self.server.stdout.close()
        if self.server_log:
            self.server_log.close()
        if sys.exc_info()[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def log(self):
        with open(self.path("server.log")) as f:
            return f.read()

    def serve(self, state):
        config = self.path("server.toml")
        with open(config, "w") as f:
            f.write(f'[network]\nlisten = "127.0.0.1:0"\n[storage]\npath = "{self.path("data")}"\n'
                    f'[auth]\nprovider = "team"\n[auth.team]\nstate = "{self.path(state)}"\n')
        self.server_log = open(self.path("server.log"), "w")
        self.server = subprocess.Popen([EXE, "serve", "--config", config, "--json"],
                                       stdout=subprocess.PIPE, stderr=self.server_log, text=True)
        line = self.server.stdout.readline()  # bounded: the server exits on any start-up error
        if not line:
            self.server.wait(timeout=10)
            raise AssertionError(f"serve did not start: {self.log()}")
        return json.loads(line)["listening"][0]

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
