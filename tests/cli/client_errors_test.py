#!/usr/bin/env python3
"""Process tests of the errors a `portcullis doc` client can act on: a refused port and a host
that does not resolve fail at once with the OS's error (not after --timeout), a server that
accepts but never completes the handshake is told apart from an unreachable one, and a handshake
the server ends without a reason lists the likely causes for the client's provider.

Run by meson (suite `process`) with PORTCULLIS set to the built executable. Every server listens
on 127.0.0.1 port 0; every wait is bounded; nothing leaves the machine.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

EXE = os.environ.get("PORTCULLIS", "portcullis")


def run(*args, timeout=60):
    p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class ClientErrorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portcullis-client-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            p.stdout.close()
            p.stderr.close()
        if sys.exc_info()[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def shared_key(self, name, network):
        key = os.path.join(self.dir, name + ".key")
        code, out, err = run("keygen", "--out", key)
        self.assertEqual(code, 0, err)
        table = (f'[auth]\nprovider = "shared-key"\n[auth.shared-key]\n'
                 f'network-key = "{network}"\nidentity = "{key}"\n')
        return out.strip(), table

    def serve(self, name, auth):
        config = self.write(name + ".toml", f'[network]\nlisten = "127.0.0.1:0"\n'
                                            f'[storage]\npath = "{name}-data"\n{auth}')
        p = subprocess.Popen([EXE, "serve", "--config", config, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        self.assertTrue(line, "serve did not start")
        return json.loads(line)

    def doc_new(self, address, *config, timeout_s="10"):
        start = time.monotonic()
        code, out, err = run("doc", "new", "--connect", address, *config, "--timeout", timeout_s)
        return code, out, err, time.monotonic() - start

    def test_a_refused_port_fails_at_once_with_the_os_error(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            address = "127.0.0.1:%d" % probe.getsockname()[1]
        code, out, err, took = self.doc_new(address)
        self.assertEqual(code, 1, err)
        self.assertEqual(out, "")
        self.assertLess(took, 5, "it waited for --timeout 10")
        self.assertEqual(err.splitlines()[-1],
                         f"portcullis: cannot connect to {address}: Connection refused")

    def test_a_host_that_does_not_resolve_fails_at_once(self):
        # A label longer than DNS allows: the resolver refuses it without asking the network.
        host = "x" * 70 + ".invalid"
        code, _, err, took = self.doc_new(f"{host}:7420")
        self.assertEqual(code, 1, err)
        self.assertLess(took, 5, "it waited for --timeout 10")
        self.assertRegex(err.splitlines()[-1], "^portcullis: cannot resolve " + host + ": .+$")

    def test_a_server_that_accepts_but_never_answers_is_not_called_unreachable(self):
        with socket.socket() as silent:  # accepts (the kernel does), never speaks
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            address = "127.0.0.1:%d" % silent.getsockname()[1]
            code, _, err, took = self.doc_new(address, timeout_s="1")
        self.assertEqual(code, 1, err)
        self.assertGreaterEqual(took, 0.9)
        self.assertEqual(err.splitlines()[-1],
                         f"portcullis: connected to {address}, but the handshake did not "
                         f"complete within 1 s (the server may run another auth provider, or "
                         f"be too busy to answer)")

    def test_an_automerge_url_is_refused_before_connecting_saying_why(self):
        for verb in (("get",), ("set", "/a", "1"), ("watch",)):
            code, out, err = run("doc", verb[0], "--connect", "127.0.0.1:1",
                                 "automerge:2j9knpCseyhnK8izDmLpGP5WMdZQ", *verb[1:])
            self.assertEqual(code, 2, err)
            self.assertEqual(out, "")
            self.assertEqual(err.splitlines()[-1],
                             "portcullis: URL: automerge: URLs are not accepted: portcullis has "
                             "its own document format and sync protocol, so it cannot fetch or "
                             "edit an automerge-repo document; its URLs start with "
                             "\"portcullis:\" (as `doc new` prints them)")

    def test_a_handshake_ended_without_a_reason_lists_the_likely_causes(self):
        server_key, server_auth = self.shared_key("server", "ab" * 32)
        ready = self.serve("server", server_auth)
        dial = ready["dial"][0]
        causes = ("(the server closed the connection without a reason; likely: this config's "
                  "network-key is not the server's, the key after ~shs: in the address is not "
                  "the server's (serve prints the address to dial), or the server denies this "
                  "device; the server's log says which)")
        # Another network key, and then the right one but another server's key in the address.
        other_key, _ = self.shared_key("other", "ab" * 32)
        _, wrong_network = self.shared_key("c1", "cd" * 32)
        _, right_network = self.shared_key("c2", "ab" * 32)
        for auth, address in ((wrong_network, dial),
                              (right_network, dial.replace(server_key, other_key))):
            config = self.write("client.toml", auth)
            code, _, err, _ = self.doc_new(address, "--config", config, timeout_s="5")
            self.assertEqual(code, 1, err)
            last = err.splitlines()[-1]
            self.assertTrue(last.startswith(f"portcullis: {address}: handshake failed: "
                                            f"shared-key: "), last)
            self.assertTrue(last.endswith(causes), last)
        # The right key and address still work.
        config = self.write("client.toml", right_network)
        code, out, err, _ = self.doc_new(dial, "--config", config)
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
