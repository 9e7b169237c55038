#!/usr/bin/env python3
"""Process tests of the `portcullis` tool: real servers and clients over TCP loopback.

Run by meson (suite `process`) with PORTCULLIS set to the built executable. Every server listens
on 127.0.0.1 port 0 and reports its port on stdout; every wait is bounded. Randomness is seeded
and the seed is printed on failure.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

EXE = os.environ.get("PORTCULLIS", "portcullis")
SEED = int(os.environ.get("PORTCULLIS_TEST_SEED", str(random.SystemRandom().randrange(1 << 30))))


def run(*args, timeout=30, check=True):
    """Runs the tool; returns (exit code, stdout, stderr)."""
    p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"portcullis {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.returncode, p.stdout, p.stderr


class Server:
    """`portcullis serve` with a config written from `network`, `auth` and a storage folder."""

    def __init__(self, folder, peer_id, extra_network="", auth=None):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.config = os.path.join(folder, "node.toml")
        auth = auth or f'[auth]\nprovider = "open"\n[auth.open]\npeer-id = "{peer_id}"\n'
        with open(self.config, "w") as f:
            f.write(f'[network]\nlisten = "127.0.0.1:0"\n{extra_network}\n'
                    f'[storage]\npath = "data"\n{auth}')
        self.proc = None
        self.address = None
        self.start()

    def start(self):
        self.stderr = open(os.path.join(self.folder, "stderr.log"), "a")
        self.proc = subprocess.Popen([EXE, "serve", "--config", self.config, "--json"],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()  # bounded: the server exits on any start-up error
        if not line:
            self.proc.wait(timeout=10)
            raise AssertionError(f"serve did not start: {self.log()}")
        ready = json.loads(line)
        self.address = ready["listening"][0]
        self.peer = ready["peer"]

    def log(self):
        with open(os.path.join(self.folder, "stderr.log")) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            code = self.proc.wait(timeout=20)
        else:
            code = self.proc.returncode if self.proc else None
        self.stderr.close()
        self.proc.stdout.close()
        return code


class ToolTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portcullis-cli-")
        self.servers = []
        # Clients say which provider they use, so that stderr holds only what a test expects.
        self.client = os.path.join(self.dir, "client.toml")
        with open(self.client, "w") as f:
            f.write('[auth]\nprovider = "open"\n')

    def tearDown(self):
        for s in self.servers:
            s.stop(signal.SIGKILL)
        if sys.exc_info()[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, name, **kw):
        s = Server(os.path.join(self.dir, name), name, **kw)
        self.servers.append(s)
        return s

    def doc(self, verb, address, *args, timeout_s="10"):
        _, out, _ = run("doc", verb, "--connect", address, "--config", self.client, "--timeout",
                        timeout_s, "--json", *args)
        return json.loads(out)

    # --- sync ------------------------------------------------------------------------------

    def test_two_clients_sync_through_one_server(self):
        s = self.server("s")
        url = self.doc("new", s.address)["url"]
        self.assertTrue(url.startswith("portcullis:"))
        # Two clients edit at once; both edits are in the merged result. (The map both write
        # into exists first: two clients making /todo at once would make two maps, one winning.)
        self.doc("set", s.address, url, "/todo", "{}")
        a = subprocess.Popen([EXE, "doc", "set", "--connect", s.address, "--config", self.client,
                              url, "/todo/alice", '"milk"'], stderr=subprocess.PIPE, text=True)
        b = subprocess.Popen([EXE, "doc", "set", "--connect", s.address, "--config", self.client,
                              url, "/todo/bob", '{"n":[1,2]}'], stderr=subprocess.PIPE, text=True)
        for p in (a, b):
            self.assertEqual(p.wait(timeout=20), 0, p.stderr.read())
            p.stderr.close()
        got = self.doc("get", s.address, url)
        self.assertEqual(got, {"todo": {"alice": "milk", "bob": {"n": [1, 2]}}})
        # Human output is the same document, indented.
        _, out, _ = run("doc", "get", "--connect", s.address, url)
        self.assertEqual(json.loads(out), got)
        self.assertIn("\n  ", out)

    def test_two_servers_dialing_each_other_and_a_late_client(self):
        s1 = self.server("s1")
        s2 = self.server("s2", extra_network=f'connect = ["{s1.address}"]')
        url = self.doc("new", s1.address)["url"]
        self.doc("set", s1.address, url, "/title", '"groceries"')
        self.doc("set", s1.address, url, "/items", '["milk"]')
        # A client that connects to the other server, after the edits, still gets them.
        self.assertEqual(self.doc("get", s2.address, url), {"items": ["milk"], "title": "groceries"})
        # And its edit travels back.
        self.doc("set", s2.address, url, "/items/1", '"eggs"')
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.doc("get", s1.address, url)["items"] == ["milk", "eggs"]:
                break
            time.sleep(0.1)
        self.assertEqual(self.doc("get", s1.address, url)["items"], ["milk", "eggs"])

    def test_watch_prints_a_line_per_change_until_interrupted(self):
        s = self.server("s")
        url = self.doc("new", s.address)["url"]
        w = subprocess.Popen([EXE, "doc", "watch", "--connect", s.address, "--config", self.client,
                              url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(json.loads(w.stdout.readline()), {})
        self.doc("set", s.address, url, "/n", "1")
        self.assertEqual(json.loads(w.stdout.readline()), {"n": 1})
        self.doc("set", s.address, url, "/n", "2")
        self.assertEqual(json.loads(w.stdout.readline()), {"n": 2})
        w.send_signal(signal.SIGINT)
        self.assertEqual(w.wait(timeout=10), 0)
        w.stdout.close()
        w.stderr.close()

    def test_unknown_document_is_unavailable(self):
        s = self.server("s")
        other = self.server("other")
        url = self.doc("new", other.address)["url"]
        code, out, err = run("doc", "get", "--connect", s.address, "--config", self.client, url,
                             check=False)
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertRegex(err, r"^portcullis: portcullis:\S+ is unavailable at 127\.0\.0\.1:\d+\n$")

    def test_sigterm_flushes_and_exits_zero_and_a_restart_has_everything(self):
        s = self.server("s")
        url = self.doc("new", s.address)["url"]
        for i in range(5):
            self.doc("set", s.address, url, f"/k{i}", str(i))
        self.assertEqual(s.stop(signal.SIGTERM), 0)
        s.start()
        self.assertEqual(self.doc("get", s.address, url), {f"k{i}": i for i in range(5)})

    def test_kill_9_during_a_burst_loses_nothing_acknowledged(self):
        rng = random.Random(SEED)
        s = self.server("s")
        url = self.doc("new", s.address)["url"]
        acknowledged = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(name):
            i = 0
            while not stop.is_set():
                key = f"{name}-{i}"
                p = subprocess.run([EXE, "doc", "set", "--connect", s.address, "--config",
                                    self.client, "--timeout", "3", url, f"/{key}", str(i)],
                                   capture_output=True, timeout=30)
                if p.returncode == 0:
                    with lock:
                        acknowledged.append(key)
                i += 1

        threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0 + rng.random())
        s.stop(signal.SIGKILL)
        with lock:
            before_kill = list(acknowledged)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        self.assertGreater(len(before_kill), 0, f"seed {SEED}: no write was acknowledged")
        s.start()  # the storage must load without error
        got = self.doc("get", s.address, url)
        missing = [k for k in acknowledged if k not in got]
        self.assertEqual(missing, [], f"seed {SEED}: acknowledged writes lost")

    def test_idle_connections_do_not_stop_an_honest_client_and_close_at_the_deadline(self):
        s = self.server("s", extra_network="handshake-timeout-ms = 2000")
        host, port = s.address.rsplit(":", 1)
        idle = []
        for _ in range(200):
            c = socket.create_connection((host, int(port)), timeout=5)
            idle.append(c)
        opened = time.monotonic()
        # An honest client is served while the 200 sit there.
        url = self.doc("new", s.address)["url"]
        self.doc("set", s.address, url, "/ok", "true")
        self.assertEqual(self.doc("get", s.address, url), {"ok": True})
        self.assertLess(time.monotonic() - opened, 2.0, "the honest client waited for the idle ones")
        # Each idle connection is closed at the handshake deadline (they may have read the open
        # provider's greeting first).
        for c in idle:
            c.settimeout(max(0.1, opened + 6 - time.monotonic()))
            try:
                while c.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                self.fail("an idle connection was still open 6 s after it connected")
            c.close()
        self.assertGreater(time.monotonic() - opened, 1.5, "closed before the deadline")

    def test_providers_swap_by_config_document_id_and_shared_key(self):
        """The same binaries, another [auth] table: plugins loaded by name."""
        for provider, extra in (("document-id", ""),
                                ("shared-key", 'network-key = "%s"\n' % ("ab" * 32))):
            folder = os.path.join(self.dir, provider)
            os.makedirs(folder)

            def table(name):
                key = os.path.join(folder, name + ".key")
                if provider == "shared-key":
                    run("keygen", "--out", key)
                return f'[auth]\nprovider = "{provider}"\n[auth.{provider}]\n' \
                       f'identity = "{key}"\n{extra}'

            s = Server(os.path.join(folder, "server"), "unused", auth=table("server"))
            self.servers.append(s)
            client = os.path.join(folder, "client.toml")
            with open(client, "w") as f:
                f.write(table("client"))
            # The server's key, from its ready line, pins it in the dial address.
            address = f"net:{s.address}~shs:{s.peer}"

            def doc(verb, *args):
                code, out, err = run("doc", verb, "--connect", address, "--config", client,
                                     "--timeout", "10", "--json", *args, check=False)
                self.assertEqual(code, 0, f"{provider}: {err}")
                return json.loads(out)

            url = doc("new")["url"]
            doc("set", url, "/who", json.dumps(provider))
            self.assertEqual(doc("get", url), {"who": provider})
            # Without the server's key in the address, the client refuses to dial blind.
            code, _, err = run("doc", "get", "--connect", s.address, "--config", client,
                               "--timeout", "2", url, check=False)
            self.assertEqual(code, 1)
            self.assertIn("carries no server key", err)

    def test_sighup_reloads_the_shared_key_deny_list_atomically(self):
        folder = os.path.join(self.dir, "sk")
        os.makedirs(folder)
        network = "cd" * 32
        keys = {}
        for name in ("server", "alice", "bob"):
            _, out, _ = run("keygen", "--out", os.path.join(folder, name + ".key"))
            keys[name] = out.strip()

        def table(name, deny=()):
            listed = ", ".join(f'"{k}"' for k in deny)
            return (f'[auth]\nprovider = "shared-key"\n[auth.shared-key]\n'
                    f'network-key = "{network}"\nidentity = "{folder}/{name}.key"\n'
                    f'deny = [{listed}]\n')

        s = Server(os.path.join(folder, "server"), "unused", auth=table("server"))
        self.servers.append(s)
        address = f"net:{s.address}~shs:{s.peer}"
        for name in ("alice", "bob"):
            with open(os.path.join(folder, name + ".toml"), "w") as f:
                f.write(table(name))

        def get(name, url):
            return run("doc", "get", "--connect", address, "--config",
                       os.path.join(folder, name + ".toml"), "--timeout", "3", url, check=False)

        _, out, _ = run("doc", "new", "--connect", address, "--config",
                        os.path.join(folder, "alice.toml"))
        url = out.strip()
        self.assertEqual(get("bob", url)[0], 0)

        def reload_with(text, expect_in_log):
            storage = '[storage]\npath = "data"\n'
            with open(s.config, "w") as f:
                f.write(f'[network]\nlisten = "127.0.0.1:0"\n{storage}{text}')
            seen = s.log().count(expect_in_log)
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while s.log().count(expect_in_log) == seen and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertGreater(s.log().count(expect_in_log), seen)

        # Deny bob: he is refused from now on; alice is not.
        reload_with(table("server", deny=[keys["bob"]]), "deny-list reloaded")
        code, _, err = get("bob", url)
        self.assertEqual(code, 1, err)
        self.assertIn("handshake failed", err)
        self.assertEqual(get("alice", url)[0], 0)
        # A bad entry keeps the old list (bob still refused, alice still in) and says why.
        reload_with(table("server", deny=[keys["bob"], "not-a-key"]), "reload failed")
        self.assertEqual(get("bob", url)[0], 1)
        self.assertEqual(get("alice", url)[0], 0)
        # And lifting the entry lets bob back in, without a restart.
        reload_with(table("server"), "deny-list reloaded")
        self.assertEqual(get("bob", url)[0], 0)

    # --- errors ----------------------------------------------------------------------------

    def bad_config(self, text, expected_pattern):
        path = os.path.join(self.dir, "bad.toml")
        with open(path, "w") as f:
            f.write(text)
        code, out, err = run("serve", "--config", path, check=False)
        self.assertEqual(code, 2, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertRegex(err, "^portcullis: " + re.escape(path) + expected_pattern)

    def test_bad_configs_name_file_line_and_key(self):
        good_storage = '[storage]\npath = "d"\n'
        self.bad_config('[network]\nlisten = "127.0.0.1:0"\nlisen = "x"\n' + good_storage,
                        r":3: network\.lisen: unknown key")
        self.bad_config('[network]\nlisten = 7420\n' + good_storage,
                        r":2: network\.listen: expected a string, found an integer")
        self.bad_config('[network]\nlisten = "127.0.0.1:0"\n' + good_storage +
                        '[auth]\nprovider = "no-such-provider"\n',
                        r":6: auth\.provider: unknown auth provider 'no-such-provider'")
        self.bad_config('[network]\nlisten = "127.0.0.1:0"\nhandshake-timeout-ms = 5\n' +
                        good_storage, r":3: network\.handshake-timeout-ms: expected 10 to 600000")
        self.bad_config('[network]\nlisten = "127.0.0.1:0"\n[storage]\n',
                        r":3: storage\.path: missing")
        self.bad_config('[network\nlisten = "x"\n', r":1: ")
        self.bad_config('[network]\nlisten = "127.0.0.1:0"\n' + good_storage + '[extra]\n',
                        r":5: extra: unknown key")
        code, _, err = run("serve", "--config", os.path.join(self.dir, "missing.toml"),
                           check=False)
        self.assertEqual(code, 2)
        self.assertRegex(err, r"^portcullis: .*missing\.toml: no such file\n$")

    def test_unreachable_server_fails_at_once(self):
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            address = "127.0.0.1:%d" % probe.getsockname()[1]
        start = time.monotonic()
        code, _, err = run("doc", "new", "--connect", address, "--timeout", "10", check=False)
        self.assertEqual(code, 1)
        self.assertLess(time.monotonic() - start, 5)  # not the whole --timeout
        # Without --config the client says it uses `open`, then why it failed.
        self.assertEqual(err.splitlines(), [
            "portcullis: note: no --config, so the 'open' provider (development only: no "
            "authentication)",
            f"portcullis: cannot connect to {address}: Connection refused"])

    def test_bad_arguments_exit_2_with_one_line(self):
        s = self.server("s")
        url = self.doc("new", s.address)["url"]
        cases = [
            ["doc", "set", "--connect", s.address, url, "/a", "milk"],        # not JSON
            ["doc", "set", "--connect", s.address, url, "a", "1"],            # not a pointer
            ["doc", "get", "--connect", s.address, "portcullis:xyz"],         # bad URL
            ["doc", "get", "--connect", "nohostport", url],                   # bad address
            ["doc", "get", url],                                              # no --connect
            ["doc", "frobnicate"],
            ["doc", "get", "--log-level", "loud", "--connect", s.address, url],
        ]
        for args in cases:
            code, out, err = run(*args, check=False)
            self.assertEqual(code, 2, f"{args}: {err}")
            self.assertEqual(out, "")
            self.assertEqual(err.count("\n"), 1, f"{args}: {err}")
            self.assertTrue(err.startswith("portcullis: "), err)
        # A list index out of range changes nothing and says where.
        self.doc("set", s.address, url, "/l", "[]")
        code, _, err = run("doc", "set", "--connect", s.address, "--config", self.client, url,
                           "/l/3", "1", check=False)
        self.assertEqual(code, 1)
        self.assertEqual(err, "portcullis: /l/3: index 3 is out of range (the list has 0 "
                              "elements)\n")

    def test_help_everywhere(self):
        for args in (["--help"], ["serve", "--help"], ["keygen", "--help"], ["doc", "--help"],
                     ["doc", "new", "--help"], ["doc", "get", "--help"], ["doc", "set", "--help"],
                     ["doc", "watch", "--help"]):
            code, out, _ = run(*args, check=False)
            self.assertEqual(code, 0, args)
            self.assertIn("--", out)

    def test_keygen_writes_a_private_file_once(self):
        path = os.path.join(self.dir, "id.key")
        _, out, _ = run("keygen", "--out", path)
        self.assertRegex(out, r"^[0-9a-f]{64}\n$")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        code, _, err = run("keygen", "--out", path, check=False)
        self.assertEqual(code, 1)
        self.assertEqual(err.count("\n"), 1)
        _, out2, _ = run("keygen", "--json", "--out", path + "2")
        info = json.loads(out2)
        self.assertRegex(info["public"], r"^[0-9a-f]{64}$")
        self.assertNotEqual(info["public"], out.strip())


if __name__ == "__main__":
    print(f"seed {SEED} (set PORTCULLIS_TEST_SEED to repeat)", file=sys.stderr)
    unittest.main(verbosity=2)
